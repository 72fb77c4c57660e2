"""Builder for any folder of EEG recordings (pre-training corpora)."""

from tfds_builders.eeg_corpus.eeg_corpus import EegCorpus

__all__ = ["EegCorpus"]
