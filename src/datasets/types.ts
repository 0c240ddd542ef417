/** What every dataset adapter produces: samples grouped by product and split. */

export type DatasetFormat = 'mvtec' | 'visa' | 'meta' | 'folder';
export type Split = 'train' | 'test';

export interface Sample {
  imagePath: string;
  /** Ground-truth mask; null for a good image (its mask is all zeros). */
  maskPath: string | null;
  product: string;
  /** Defect type, 'good' for normal images. */
  defect: string;
  /** 0 normal, 1 anomalous. */
  label: 0 | 1;
}

export interface Dataset {
  readonly name: string;
  readonly format: DatasetFormat;
  readonly root: string;
  /** Product (class) names, sorted. */
  products(): string[];
  /** Samples of one product and split, sorted by image path; [] when the split is absent. */
  samples(product: string, split: Split): Sample[];
}

/** An adapter's output: product → split → samples. */
export type DatasetIndex = Map<string, Record<Split, Sample[]>>;

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff'] as const;
