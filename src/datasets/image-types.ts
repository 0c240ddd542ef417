/** Interleaved 8-bit RGB pixels: data is [height, width, 3]. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Interleaved 8-bit single-channel pixels: data is [height, width]. */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}
