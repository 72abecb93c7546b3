"""Training data: converting image folders to TFRecords, the built-in dataset, the input pipeline."""
