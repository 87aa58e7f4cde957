/** Tensors as they cross the native boundary: always copies, in JS-owned typed arrays. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool';

export interface TypedArrayFor {
  float32: Float32Array;
  float64: Float64Array;
  float16: Uint16Array; // raw IEEE half bits
  bfloat16: Uint16Array; // raw bfloat16 bits
  int64: BigInt64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

export interface Tensor<D extends DType = 'float32'> {
  dtype: D;
  shape: number[];
  data: TypedArrayFor[D];
}

export type AnyTensor = { [D in DType]: Tensor<D> }[DType];

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A float32 tensor; `data` defaults to zeros. */
export function tensor(shape: number[], data?: Float32Array | number[]): Tensor<'float32'> {
  const n = numel(shape);
  const arr = data instanceof Float32Array ? data : data ? Float32Array.from(data) : new Float32Array(n);
  if (arr.length !== n) throw new RangeError(`tensor: shape [${shape}] needs ${n} values, got ${arr.length}`);
  return { dtype: 'float32', shape: [...shape], data: arr };
}

/** float32 tensors joined along their first axis (the rest of their shapes equal). */
export function concatFirst(parts: Tensor[]): Tensor {
  const n = parts.reduce((a, p) => a + p.shape[0], 0);
  const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p.data, o);
    o += p.data.length;
  }
  return { dtype: 'float32', shape: [n, ...parts[0].shape.slice(1)], data };
}

/** The index along the first axis of the first item holding NaN or infinity, or -1. */
export function firstNonFinite(t: Tensor): number {
  const per = t.data.length / t.shape[0];
  for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i])) return Math.floor(i / per);
  return -1;
}
