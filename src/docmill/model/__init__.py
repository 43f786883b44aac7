"""The classification model: label sets, features, training, the compiled model file, evaluation.

- ``labels``: label sets (one file, keywords and descriptions) used by every classifier;
- ``text_features``, ``features``: what a trained model reads from a document's text;
- ``training``: ``docmill train`` (corpus → fitted pipeline, held-out report);
- ``file``, ``compiled``: the model file (header, numeric arrays, pickle) and its numpy-only scorer;
- ``evaluation``: accuracy, macro-F1, per-label P/R/F1 and confusion against a truth CSV.
"""
