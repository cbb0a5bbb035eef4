from adapters.mirror.downloader import HttpMirrorDownloader

__all__ = ["HttpMirrorDownloader"]
