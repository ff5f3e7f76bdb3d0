"""IPython: %%chat, %chat and its commands, the shell's outputs, notebook workflow helpers."""
