"""Every inference engine and the registry that creates them by name (`registry.py`):
ONNX Runtime (`onnx_engine.py`, the CPU default), the ONNX model run by PyTorch (CUDA,
FP16, compiled) or built into a TensorRT engine, and their on-disk cache. Engines only run
the network; the Colorizer that keeps frames on the GPU around them is
`streamcolor/gpu_colorizer.py`. PyTorch and TensorRT are imported only when their engine
is asked for: the CPU install needs neither."""
