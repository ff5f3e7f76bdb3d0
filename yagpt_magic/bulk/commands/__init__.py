"""The bulk layer's ``%chat`` commands: batch tasks and the row cache."""
