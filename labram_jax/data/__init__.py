"""EEG data: reading and preprocessing recordings, build reports, and grain input pipelines.

Modules (imported explicitly; this package imports nothing heavy so that build workers start fast):

* `reading`: opening any recording MNE reads, with EDF sanity checks and a latin-1 fallback;
* `preprocess`: the reference's 0.1-75 Hz band-pass, notch, 200 Hz resampling, microvolts;
* `windows`: fixed windows, event contexts, NaN/flat checks;
* `recording`: the per-file pipeline shared by all TFDS builders (`FileTask` -> report + records);
* `report`: build reports whose counts add up;
* `pipeline`: grain loaders over TFDS data sources (sharding, shuffling, padding/masks, batching, state);
* `mixture`: weighted mixtures of several datasets.
"""
