/**
 * A Hugging Face `pytorch_model.bin` (torch.save of CLIPModel.state_dict()) → `model.safetensors`
 * holding exactly the tensors our CLIP reads, each in its own dtype and bit for bit, read
 * through the restricted torch-zip reader (no pickle code runs). Anything else the state dict
 * holds (old transformers' position_ids buffers) is left out and reported.
 */
import { UserError } from '../../errors.js';
import { writeSafetensorsRaw, type RawTensorSource } from '../../io/safetensors.js';
import { TorchZip } from '../../io/torch-zip.js';
import type { ClipConfig } from './config.js';
import { clipTensorProblems, expectedClipTensors, summariseProblems } from './tensors.js';

export interface ConversionResult {
  tensorCount: number;
  /** Source tensors not written (not part of a CLIPModel's weights). */
  ignored: string[];
}

export async function convertTorchBin(
  source: string,
  config: ClipConfig,
  dest: string,
  label: string,
): Promise<ConversionResult> {
  const archive = await TorchZip.open(source);
  try {
    const tensors = archive.tensors();
    const problems = clipTensorProblems((name) => tensors.get(name), config);
    if (problems.length > 0)
      throw new UserError(`${label}: ${summariseProblems(problems)}`, {
        hint: 'the pytorch_model.bin does not hold the CLIPModel that config.json describes: both must come from the same repository and revision',
      });
    const expected = expectedClipTensors(config);
    const out = new Map<string, RawTensorSource>();
    for (const name of expected.keys()) {
      const tensor = tensors.get(name)!;
      out.set(name, {
        dtype: tensor.dtype,
        shape: tensor.shape,
        bytes: () => archive.bytes(tensor),
      });
    }
    await writeSafetensorsRaw(dest, out, { format: 'pt', converted_from: 'pytorch_model.bin' });
    return {
      tensorCount: out.size,
      ignored: [...tensors.keys()].filter((name) => !expected.has(name)).sort(),
    };
  } finally {
    await archive.close();
  }
}
