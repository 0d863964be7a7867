"""Audits of store closures: hermeticity (`hermetic`), reproducibility (`reproduce`), cache
challenges (`challenge`) and stage manifests (`manifest`). Each module is imported on its own,
so the manifest a run writes does not load the ELF reader."""
