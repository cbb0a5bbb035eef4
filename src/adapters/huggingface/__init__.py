from adapters.huggingface.downloader import HuggingFaceDownloader

__all__ = ["HuggingFaceDownloader"]
