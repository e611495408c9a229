"""Native TensorRT, by phase: the library (:mod:`.library`), engine builds (:mod:`.build`),
precision read-back (:mod:`.readback`), engine manifests (:mod:`.manifest`), output allocators
(:mod:`.allocator`) and the backend's run path (:mod:`.backend`). The runtime registry loads the
backend by name; ``build_plan`` is public through :mod:`optieval.runtime`."""
