"""Widget: the chat widget's Python side, its front-end files and the tool approval panel."""
