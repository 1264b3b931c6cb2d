"""Every inference engine and the registry that creates them by name (`registry.py`):
ONNX Runtime (`onnx_engine.py`, the CPU default), the ONNX model run by PyTorch (CUDA,
FP16, compiled) or built into a TensorRT engine, their on-disk cache, and frames kept on
the GPU. PyTorch and TensorRT are imported only when their engine is asked for: the CPU
install needs neither."""
