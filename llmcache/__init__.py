"""llmcache: a Kubernetes-native caching layer for LLM and RAG traffic."""

__version__ = "0.1.0"
