"""From raw text to article stores: chunking, input readers, an offline encoder and a resumable pipeline.

torch and sentence-transformers (``lvmdiag[embed]``) are imported only when a model is loaded.
"""

from lvmdiag.embed.chunking import ChunkParams, chunk_article
from lvmdiag.embed.pipeline import EmbedResult, embed_text
from lvmdiag.embed.store_out import ReverseResult, reverse_store

__all__ = ["ChunkParams", "EmbedResult", "ReverseResult", "chunk_article", "embed_text", "reverse_store"]
