"""The data in the schema: datasets (.npz or synthetic), seed, the embedding-model registry,
the integrity checks of ``check-constraints``, and the demo's orchestration of the main job.

Import from the modules (``memctl.data.seed`` ...): this package imports nothing itself.
"""
