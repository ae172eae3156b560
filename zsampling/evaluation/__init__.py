"""Evaluation: comparing methods fairly (``zsampling eval``) and the demo (``zsampling demo``)."""
