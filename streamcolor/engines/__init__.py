"""GPU engines: the ONNX model run by PyTorch (CUDA, FP16, compiled) or built into a
TensorRT engine, their on-disk cache, and frames kept on the GPU. Imported only when a
GPU backend is asked for: the CPU install needs neither PyTorch nor TensorRT."""
