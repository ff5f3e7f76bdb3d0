"""Chat with YandexGPT from IPython and Jupyter."""

__version__ = "0.1.0"
