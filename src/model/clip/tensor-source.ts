/**
 * Named tensors of a weights file, whatever its format: a safetensors file or a torch.save
 * archive (through the restricted reader). Shapes and dtypes first, bytes on demand.
 */
import { SafetensorsFile, type RawDtype } from '../../io/safetensors.js';
import { TorchZip } from '../../io/torch-zip.js';

export interface TensorSource {
  readonly file: string;
  describe(name: string): { dtype: RawDtype; shape: number[] } | undefined;
  names(): string[];
  bytes(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

export async function openTensorSource(file: string): Promise<TensorSource> {
  if (file.endsWith('.safetensors')) {
    const st = await SafetensorsFile.open(file);
    return {
      file,
      describe: (name) => {
        const entry = st.entries[name];
        return entry ? { dtype: entry.dtype as RawDtype, shape: entry.shape } : undefined;
      },
      names: () => Object.keys(st.entries),
      bytes: (name) => st.bytes(name),
      close: async () => undefined,
    };
  }
  const archive = await TorchZip.open(file);
  const tensors = archive.tensors();
  return {
    file,
    describe: (name) => tensors.get(name),
    names: () => [...tensors.keys()],
    bytes: (name) => archive.bytes(tensors.get(name)!),
    close: () => archive.close(),
  };
}
