"""Reads a .pth written by torch.save (the zip format, the default since torch 1.6) into numpy
arrays without torch, and without running pickled code.

The zip holds <archive>/data.pkl, a pickle whose tensors are
torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
calls (or _rebuild_tensor_v3(..., dtype, metadata) for dtypes without a legacy storage class),
with storages referenced through persistent ids ('storage', StorageType, key, location, numel);
<archive>/data/<key> holds each storage's raw bytes, <archive>/byteorder their byte order.
The unpickler resolves only the globals of a plain state dict (ALLOWED); anything else is refused.

Tensors come back as numpy arrays of their dtype, except bfloat16, widened exactly to float32
(numpy has no bfloat16). Views keep their offset and stride and come back as copies.
"""
import collections
import pickle
import zipfile

import numpy as np


class FormatError(Exception):
    pass


# Legacy typed storage classes (what _rebuild_tensor_v2 pickles, torch 1.6 to 2.x) and the
# torch.<dtype> globals that _rebuild_tensor_v3 pickles next to an UntypedStorage.
_STORAGES = {
    'DoubleStorage': 'float64', 'FloatStorage': 'float32', 'HalfStorage': 'float16', 'BFloat16Storage': 'bfloat16',
    'LongStorage': 'int64', 'IntStorage': 'int32', 'ShortStorage': 'int16', 'CharStorage': 'int8',
    'ByteStorage': 'uint8', 'BoolStorage': 'bool',
}
_DTYPES = {
    'float64': 'float64', 'double': 'float64', 'float32': 'float32', 'float': 'float32', 'float16': 'float16', 'half': 'float16',
    'bfloat16': 'bfloat16', 'int64': 'int64', 'long': 'int64', 'int32': 'int32', 'int': 'int32', 'int16': 'int16',
    'short': 'int16', 'int8': 'int8', 'uint8': 'uint8', 'uint16': 'uint16', 'uint32': 'uint32', 'uint64': 'uint64', 'bool': 'bool',
}
_NUMPY = {'bfloat16': 'uint16'}  # read as raw 16-bit words, then widened


class _Dtype:
    """Stands for a torch dtype or typed storage class (name is one of _DTYPES' values)."""
    def __init__(self, name):
        self.name = name


class _Untyped:
    """Stands for torch.storage.UntypedStorage: bytes whose dtype comes with the tensor."""


class _Storage:
    def __init__(self, data, dtype):
        self.data = data  # bytes
        self.dtype = dtype  # a _DTYPES value, or None for an untyped (byte) storage


def _rebuild_tensor(storage, offset, size, stride, dtype):
    name = dtype or storage.dtype
    if name is None:
        raise FormatError('an untyped storage is used by a tensor without a dtype')
    order = storage.byteorder
    np_dtype = np.dtype(_NUMPY.get(name, name)).newbyteorder(order)
    if len(storage.data) % np_dtype.itemsize:
        raise FormatError(f'storage of {len(storage.data)} bytes is not a whole number of {name} elements')
    flat = np.frombuffer(storage.data, dtype=np_dtype)
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size + stride) or offset < 0:
        raise FormatError(f'bad tensor layout: offset {offset}, size {size}, stride {stride}')
    # as_strided reads whatever memory it is pointed at: check the extent against the storage.
    if 0 not in size and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= flat.size:
        raise FormatError(f'tensor (offset {offset}, size {size}, stride {stride}) reaches past its storage of {flat.size} elements')
    if 0 in size:
        array = np.zeros(size, dtype=np_dtype)
    else:
        array = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * np_dtype.itemsize for s in stride]).copy()
    array = array.astype(array.dtype.newbyteorder('='))
    if name == 'bfloat16':  # the high half of a float32: widening is exact
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return _rebuild_tensor(storage, offset, size, stride, None)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
    if not isinstance(dtype, _Dtype):
        raise FormatError(f'_rebuild_tensor_v3 dtype is {dtype!r}, not a torch dtype')
    return _rebuild_tensor(storage, offset, size, stride, dtype.name)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    return data


ALLOWED = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch._utils', '_rebuild_tensor_v3'): _rebuild_tensor_v3,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
    ('torch.storage', 'UntypedStorage'): _Untyped,
    ('torch', 'UntypedStorage'): _Untyped,
    **{('torch', k): _Dtype(v) for k, v in _STORAGES.items()},
    **{('torch', k): _Dtype(v) for k, v in _DTYPES.items()},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix, byteorder):
        super().__init__(file)
        self.archive, self.prefix, self.byteorder, self.storages = archive, prefix, byteorder, {}

    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise FormatError(f'refusing to load {module}.{name}: only plain tensors and dicts are read without torch')
        return ALLOWED[(module, name)]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage'):
            raise FormatError(f'unknown persistent id {pid!r}')
        _, kind, key, _location, _numel = pid
        if key not in self.storages:
            try:
                data = self.archive.read(f'{self.prefix}data/{key}')
            except KeyError:
                raise FormatError(f'storage {key} is referenced but {self.prefix}data/{key} is not in the archive') from None
            if isinstance(kind, _Dtype):
                dtype = kind.name
            elif kind is _Untyped:
                dtype = None
            else:
                raise FormatError(f'storage {key} has type {kind!r}')
            storage = _Storage(data, dtype)
            storage.byteorder = '<' if self.byteorder == 'little' else '>'
            self.storages[key] = storage
        return self.storages[key]


def is_torch_zip(path):
    return zipfile.is_zipfile(path)


def load(path):
    """The object torch.save wrote to path, with tensors as numpy arrays."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith('data.pkl') and n.count('/') == 1]
        if len(pickles) != 1:
            raise FormatError(f'{path}: not a torch.save zip (expected one <archive>/data.pkl, found {len(pickles)})')
        prefix = pickles[0][:-len('data.pkl')]
        names = set(archive.namelist())
        byteorder = archive.read(f'{prefix}byteorder').decode().strip() if f'{prefix}byteorder' in names else 'little'
        if byteorder not in ('little', 'big'):
            raise FormatError(f'{path}: byteorder record is {byteorder!r}')
        with archive.open(pickles[0]) as f:
            return _Unpickler(f, archive, prefix, byteorder).load()
