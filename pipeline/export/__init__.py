"""Export bundles (ONNX encoder + classifier + preprocessing) and running them on IMU files."""
