"""The lifecycle of an embedding model (``memctl models``): register, backfill, index, switch, retire.

An operator moves every tenant from one model to another while services keep searching (issue 13;
schema.md "Embeddings": one row per memory and model, one partial HNSW index per model).
"""
