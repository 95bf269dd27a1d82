"""A SavedModel loaded and run the way TF Serving does: TensorFlow's C API, not Python's loader.

TF Serving's C++ ``LoadSavedModel`` imports the MetaGraphDef into a Session, runs the saver's restore op (which
restores only the variables the saver knows) and fetches a signature's tensors by name; ``tf.saved_model.load``
restores objects instead and so runs exports the C++ loader cannot.  This module calls the C API's
``TF_LoadSessionFromSavedModel`` in the wheel's ``libtensorflow_cc.so.2`` with ``ctypes``.  String tensors there
are arrays of 24-byte ``TF_TString``s (``TF_StringInit``/``TF_StringCopy`` to write, ``TF_StringGetDataPointer``/
``TF_StringGetSize`` to read).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

TSTRING_BYTES = 24  # sizeof(TF_TString)
# TF_DataType codes (tensorflow/c/tf_datatype.h) and the numpy type of their bytes: the quantized types as their
# integers, bfloat16, float8, int4 and the like as ml_dtypes' types (TensorFlow's own numpy types for them).
_TF_STRING = 7
_NUMPY_TYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 8: "complex64",
                9: "int64", 10: "bool", 11: "int8", 12: "uint8", 13: "int32", 15: "int16", 16: "uint16", 17: "uint16",
                18: "complex128", 19: "float16", 22: "uint32", 23: "uint64"}
_ML_DTYPES = {14: "bfloat16", 24: "float8_e5m2", 25: "float8_e4m3fn", 26: "float8_e4m3fnuz",
              27: "float8_e4m3b11fnuz", 28: "float8_e5m2fnuz", 29: "int4", 30: "uint4", 31: "int2", 32: "uint2",
              33: "float4_e2m1fn"}
# Handles with no value to read: an output of these types shows as its type's name.
_OPAQUE = {20: "resource", 21: "variant"}


class ServingError(RuntimeError):
    """The C API refused to load or run the export; the message is TensorFlow's own."""


class CApiUnavailable(ServingError):
    """This TensorFlow installation ships no C API library (e.g. on Windows): nothing can be checked."""


class _Output(ctypes.Structure):
    _fields_ = [("oper", ctypes.c_void_p), ("index", ctypes.c_int)]


class _Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t), ("data_deallocator", ctypes.c_void_p)]


_LIBRARY = None


def _library():
    """``libtensorflow_cc`` of the installed tensorflow wheel, with the prototypes used here."""
    global _LIBRARY
    if _LIBRARY is not None:
        return _LIBRARY
    import importlib.util

    # Found without importing TensorFlow's Python package: loading the library alone takes under a second where
    # `import tensorflow` takes 7-10 s (docs/PERFORMANCE.md), so `textclf predict` on an export never imports it.
    # A later `import tensorflow` in the process uses the same loaded library.
    spec = importlib.util.find_spec("tensorflow")
    folders = [Path(folder) for folder in (spec.submodule_search_locations or [])] if spec else []
    candidates = [folder / name for folder in folders for name in ("libtensorflow_cc.so.2", "libtensorflow_cc.2.dylib")]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is None:
        raise CApiUnavailable(f"TensorFlow's C API library (libtensorflow_cc) was not found in "
                              f"{', '.join(map(str, folders)) or 'an installed tensorflow package'}")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as error:
        raise CApiUnavailable(f"TensorFlow's C API library {path} cannot be loaded: {error}") from None
    p, i, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    prototypes = {
        "TF_NewStatus": (p, []), "TF_DeleteStatus": (None, [p]), "TF_GetCode": (i, [p]),
        "TF_Message": (ctypes.c_char_p, [p]),
        "TF_NewSessionOptions": (p, []), "TF_DeleteSessionOptions": (None, [p]),
        "TF_SetConfig": (None, [p, ctypes.c_char_p, s, p]),
        "TF_NewGraph": (p, []), "TF_DeleteGraph": (None, [p]),
        "TF_NewBuffer": (ctypes.POINTER(_Buffer), []), "TF_DeleteBuffer": (None, [ctypes.POINTER(_Buffer)]),
        "TF_LoadSessionFromSavedModel": (p, [p, p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), i, p,
                                             ctypes.POINTER(_Buffer), p]),
        "TF_GraphOperationByName": (p, [p, ctypes.c_char_p]),
        "TF_SessionRun": (None, [p, p, ctypes.POINTER(_Output), ctypes.POINTER(p), i, ctypes.POINTER(_Output),
                                 ctypes.POINTER(p), i, p, i, p, p]),
        "TF_CloseSession": (None, [p, p]), "TF_DeleteSession": (None, [p, p]),
        "TF_AllocateTensor": (p, [i, ctypes.POINTER(ctypes.c_int64), i, s]), "TF_DeleteTensor": (None, [p]),
        "TF_TensorData": (p, [p]), "TF_TensorType": (i, [p]), "TF_NumDims": (i, [p]),
        "TF_Dim": (ctypes.c_int64, [p, i]), "TF_TensorByteSize": (s, [p]),
        "TF_StringInit": (None, [p]), "TF_StringCopy": (None, [p, ctypes.c_char_p, s]),
        "TF_StringGetDataPointer": (p, [p]), "TF_StringGetSize": (s, [p]), "TF_StringDealloc": (None, [p]),
    }
    for name, (restype, argtypes) in prototypes.items():
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes
    _LIBRARY = lib
    return lib


def _check(lib, status, action: str) -> None:
    if lib.TF_GetCode(status) != 0:
        raise ServingError(f"{action}: {lib.TF_Message(status).decode('utf-8', 'replace')}")


class ServingSession:
    """A SavedModel version folder loaded with ``TF_LoadSessionFromSavedModel`` (tag ``serve``), as TF Serving does.

    Raises:
        ServingError: with TensorFlow's message when loading fails.
    """

    def __init__(self, export_dir, signatures=None, session_config: bytes | None = None):
        """``signatures``: ``{name: ({input key: tensor name}, {output key: tensor name})}`` as :attr:`signatures`
        gives them (an export's metadata keeps them); ``None`` reads them from the MetaGraphDef, which needs
        TensorFlow's Python package for the protocol buffer classes.  ``session_config``: a serialized
        ``ConfigProto`` for the session (threads, as TF Serving's ``--tensorflow_intra_op_parallelism``).  TensorFlow
        sizes a process's CPU thread pools once, at its first ``TF_Session``: later thread settings have no effect."""
        self._lib = lib = _library()
        self._session = None
        status, options, meta_graph = lib.TF_NewStatus(), lib.TF_NewSessionOptions(), lib.TF_NewBuffer()
        self._graph = lib.TF_NewGraph()
        try:
            if session_config:
                lib.TF_SetConfig(options, session_config, len(session_config), status)
                _check(lib, status, "Setting the session options (TF_SetConfig)")
            tags = (ctypes.c_char_p * 1)(b"serve")
            self._session = lib.TF_LoadSessionFromSavedModel(
                options, None, str(export_dir).encode(), tags, 1, self._graph, meta_graph, status)
            _check(lib, status, f"Loading {export_dir} (TF_LoadSessionFromSavedModel)")
            if signatures is None:
                from tensorflow.core.protobuf import meta_graph_pb2

                definition = meta_graph_pb2.MetaGraphDef()
                definition.ParseFromString(ctypes.string_at(meta_graph.contents.data, meta_graph.contents.length))
                # {signature: ({input key: tensor name}, {output key: tensor name})}, as the MetaGraphDef declares.
                signatures = {
                    name: ({key: info.name for key, info in signature.inputs.items()},
                           {key: info.name for key, info in signature.outputs.items()})
                    for name, signature in definition.signature_def.items()
                }
        finally:
            lib.TF_DeleteBuffer(meta_graph)
            lib.TF_DeleteSessionOptions(options)
            lib.TF_DeleteStatus(status)
        self.signatures = {name: (dict(inputs), dict(outputs)) for name, (inputs, outputs) in signatures.items()}

    def missing_tensors(self) -> list[str]:
        """The tensor names of :attr:`signatures` whose operation the graph lacks (a hand-edited export metadata)."""
        names = {tensor for inputs, outputs in self.signatures.values() for part in (inputs, outputs)
                 for tensor in part.values()}
        return sorted(name for name in names
                      if not self._lib.TF_GraphOperationByName(self._graph, name.partition(":")[0].encode()))

    def _output(self, tensor_name: str) -> _Output:
        op, _, index = tensor_name.partition(":")  # "op:1"
        operation = self._lib.TF_GraphOperationByName(self._graph, op.encode())
        if not operation:
            raise ServingError(f"The graph has no operation {op!r} (signature tensor {tensor_name})")
        return _Output(operation, int(index or 0))

    def _string_tensor(self, texts):
        """A ``TF_STRING`` tensor ``[len(texts)]``; the caller frees it with ``_free_strings``."""
        lib = self._lib
        # Encoded before the tensor exists: a text that cannot be (a lone surrogate) raises with nothing to free.
        encoded = [text.encode("utf-8") if isinstance(text, str) else bytes(text) for text in texts]
        dims = (ctypes.c_int64 * 1)(len(encoded))
        tensor = lib.TF_AllocateTensor(_TF_STRING, dims, 1, TSTRING_BYTES * len(encoded))
        data = lib.TF_TensorData(tensor)
        for index, raw in enumerate(encoded):
            lib.TF_StringInit(data + index * TSTRING_BYTES)
            lib.TF_StringCopy(data + index * TSTRING_BYTES, raw, len(raw))
        return tensor

    def _free_strings(self, tensor, count: int) -> None:
        # TF_DeleteTensor frees the buffer but not the heap copies of strings over 22 bytes.
        data = self._lib.TF_TensorData(tensor)
        for index in range(count):
            self._lib.TF_StringDealloc(data + index * TSTRING_BYTES)
        self._lib.TF_DeleteTensor(tensor)

    def _to_numpy(self, tensor) -> np.ndarray:
        """An output tensor as numpy: strings as ``bytes`` in an object array, every numeric type TensorFlow has."""
        lib = self._lib
        shape = tuple(lib.TF_Dim(tensor, axis) for axis in range(lib.TF_NumDims(tensor)))
        code, data, count = lib.TF_TensorType(tensor), lib.TF_TensorData(tensor), int(np.prod(shape, dtype=np.int64))
        if code == _TF_STRING:
            values = [ctypes.string_at(lib.TF_StringGetDataPointer(data + index * TSTRING_BYTES),
                                       lib.TF_StringGetSize(data + index * TSTRING_BYTES)) for index in range(count)]
            return np.array(values, dtype=object).reshape(shape)
        if code in _ML_DTYPES:
            import ml_dtypes  # TensorFlow's dependency; imported only for these types.

            dtype = np.dtype(getattr(ml_dtypes, _ML_DTYPES[code]))
        elif code in _NUMPY_TYPES:
            dtype = np.dtype(_NUMPY_TYPES[code])
        else:  # A resource or variant handle (or a type newer than this table): there is no value to read.
            return np.full(shape, f"<{_OPAQUE.get(code, f'dtype code {code}')}>", dtype=object)
        size = lib.TF_TensorByteSize(tensor)
        if size != count * dtype.itemsize:
            raise ServingError(f"An output of {dtype} and shape {list(shape)} holds {size} bytes, not "
                               f"{count * dtype.itemsize}")
        # An empty tensor may have no buffer at all.
        raw = ctypes.string_at(data, size) if size else b""
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def run(self, signature: str, texts, keys=None) -> dict[str, np.ndarray]:
        """``{output key: array}`` of ``signature`` run on ``texts`` (``str`` or ``bytes``) with ``TF_SessionRun``.

        ``keys``: only these outputs are fetched (TF Serving's ``output_filter``), ``None`` every one.  Strings come
        back as ``bytes`` in object arrays.
        """
        if signature not in self.signatures:
            raise ServingError(f"No signature {signature!r}; the export has {sorted(self.signatures)}")
        inputs, outputs = self.signatures[signature]
        if len(inputs) != 1:
            raise ServingError(f"Signature {signature!r} takes {sorted(inputs)}; expected one string input")
        unknown = sorted(set(keys or ()) - set(outputs))
        if unknown:
            raise ServingError(f"Signature {signature!r} has no output {', '.join(map(repr, unknown))}; it has "
                               f"{sorted(outputs)}")
        lib = self._lib
        texts = list(texts)  # Counted twice below (the tensor, then freeing its strings): any iterable will do.
        keys = sorted(outputs) if keys is None else list(keys)
        input_outputs = (_Output * 1)(self._output(next(iter(inputs.values()))))
        fetches = (_Output * len(keys))(*(self._output(outputs[key]) for key in keys))
        values = (ctypes.c_void_p * len(keys))()
        text_tensor = self._string_tensor(list(texts))
        feeds = (ctypes.c_void_p * 1)(text_tensor)
        status = lib.TF_NewStatus()
        try:
            lib.TF_SessionRun(self._session, None, input_outputs, feeds, 1, fetches, values, len(keys),
                              None, 0, None, status)
            _check(lib, status, f"Running signature {signature!r} (TF_SessionRun)")
            return {key: self._to_numpy(values[index]) for index, key in enumerate(keys)}
        finally:
            for value in values:
                if value:
                    lib.TF_DeleteTensor(value)
            self._free_strings(text_tensor, len(texts))
            lib.TF_DeleteStatus(status)

    def close(self) -> None:
        lib = self._lib
        status = lib.TF_NewStatus()
        if self._session:
            lib.TF_CloseSession(self._session, status)
            lib.TF_DeleteSession(self._session, status)
            self._session = None
        if self._graph:
            lib.TF_DeleteGraph(self._graph)
            self._graph = None
        lib.TF_DeleteStatus(status)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_lib", None) is not None:
            self.close()
