"""Builder for any folder of EEG recordings (pre-training corpora)."""

from tfds_builders.eeg_corpus.eeg_corpus import EegCorpus, corpus_tasks

__all__ = ["EegCorpus", "corpus_tasks"]
