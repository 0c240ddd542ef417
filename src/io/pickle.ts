/**
 * A restricted pickle interpreter: it builds plain data (numbers, strings, bytes, lists,
 * tuples, dicts) and hands every global to the caller's allowlist. Nothing is imported or
 * called: a global missing from the allowlist (os.system, builtins.eval, …) stops the load
 * with its name, and so does every opcode outside the subset torch.save's state dicts use
 * (protocols 2 to 5, no INST/OBJ/NEWOBJ, no extension registry, no out-of-band buffers).
 * Work is linear in the pickle's size: every opcode consumes input, containers are shared by
 * reference, never copied.
 */
import { UserError } from '../errors.js';

/** A Python tuple: a frozen array. */
export type PickleTuple = readonly PickleValue[];

/** A Python dict or collections.OrderedDict (keys are the hashable primitives). */
export class PickleDict extends Map<PickleKey, PickleValue> {
  /** Attributes set by BUILD (an OrderedDict's `_metadata`). */
  readonly attributes = new Map<string, PickleValue>();
  constructor(readonly ordered = false) {
    super();
  }
}

export type PickleKey = string | number | bigint | boolean | null;

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | PickleDict
  | PickleObject;

/** Anything an allowlisted global builds (a tensor, a storage type, a parameter…). */
export interface PickleObject {
  readonly kind: string;
}

/** What the allowlist maps a `module.name` global to. */
export interface PickleGlobal {
  /** The value the global stands for when it is not called (e.g. a storage type). */
  value?: PickleObject;
  /** REDUCE: called with the argument tuple; returns plain data or an object. */
  call?: (args: PickleTuple) => PickleValue;
}

export interface UnpickleOptions {
  /** `module.name` → what it builds; every other global is refused. */
  globals: ReadonlyMap<string, PickleGlobal>;
  /** BINPERSID: the persistent id (plain data) → the object it refers to. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** Names the input in errors (e.g. `model.bin: archive/data.pkl`). */
  source: string;
}

/** A pickle the interpreter will not run: the message names what it refused. */
export class PickleRefused extends UserError {}

type StackItem = PickleValue | GlobalRef;

class GlobalRef {
  constructor(
    readonly name: string,
    readonly global: PickleGlobal,
  ) {}
}

const MAX_STACK = 1_000_000;

/** Runs a pickle and returns its value. Throws PickleRefused or a UserError for malformed input. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, StackItem>();
  let pos = 0;

  const fail = (what: string): never => {
    throw new UserError(`${options.source}: malformed pickle at byte ${pos}: ${what}`, {
      hint: 'the file is truncated or corrupt: download or export it again',
    });
  };
  const refuse = (what: string): never => {
    throw new PickleRefused(`${options.source}: refusing to load: ${what}`, {
      hint: 'only plain PyTorch state dicts (tensors, dicts, numbers, strings) are read; a pickle that imports or calls anything else may run code when loaded in Python. Use a safetensors copy of these weights',
    });
  };
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) fail(`needs ${n} more bytes, the data ends`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const value = view.getBigUint64(pos, true);
    pos += 8;
    if (value > BigInt(bytes.length)) fail(`length ${value} exceeds the data`);
    return Number(value);
  };
  const take = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const text = (n: number) => {
    try {
      return decoder.decode(take(n));
    } catch {
      return fail('a string that is not UTF-8');
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('an unterminated line');
    const out = text(end - pos);
    pos++;
    return out;
  };
  const push = (item: StackItem) => {
    if (stack.length >= MAX_STACK) fail('the stack grows past a million items');
    stack.push(item);
  };
  const pop = (): StackItem =>
    stack.length === 0 ? fail('pop from an empty stack') : stack.pop()!;
  const value = (item: StackItem, what: string): PickleValue => {
    if (item instanceof GlobalRef) {
      if (item.global.value) return item.global.value;
      return refuse(`the global ${item.name} is used as ${what}`);
    }
    return item;
  };
  const popValue = (what: string) => value(pop(), what);
  const popMark = (): StackItem[] => {
    const at = marks.pop();
    if (at === undefined) fail('no mark to pop to');
    const items = stack.splice(at!);
    return items;
  };
  const top = (what: string): PickleValue => {
    if (stack.length === 0) fail(`${what} on an empty stack`);
    return value(stack[stack.length - 1], what);
  };
  const key = (item: PickleValue): PickleKey => {
    if (
      item === null ||
      typeof item === 'string' ||
      typeof item === 'number' ||
      typeof item === 'bigint' ||
      typeof item === 'boolean'
    )
      return item;
    return refuse('a dict key that is not a string, number or boolean');
  };
  const dictOf = (target: PickleValue, op: string): PickleDict => {
    if (target instanceof PickleDict) return target;
    return fail(`${op} on something that is not a dict`);
  };
  const listOf = (target: PickleValue, op: string): PickleValue[] => {
    if (Array.isArray(target) && !Object.isFrozen(target)) return target as PickleValue[];
    return fail(`${op} on something that is not a list`);
  };
  const tuple = (items: PickleValue[]): PickleTuple => Object.freeze(items);
  const resolveGlobal = (module: string, name: string) => {
    const full = `${module}.${name}`;
    const global = options.globals.get(full);
    if (!global) refuse(`the pickle imports ${full}, which a state dict never needs`);
    push(new GlobalRef(full, global!));
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol above 5');
        break;
      case 0x95: // FRAME: framing is only a hint for buffered readers
        u64();
        break;
      case 0x2e: {
        // STOP
        if (stack.length !== 1 || marks.length !== 0)
          fail(`STOP with ${stack.length} items and ${marks.length} marks left`);
        return popValue('the result');
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length && marks[marks.length - 1] === stack.length) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(stack.length ? stack[stack.length - 1] : fail('DUP on an empty stack'));
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : i32();
        if (n < 0 || n > 64) fail(`an integer of ${n} bytes`);
        const raw = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]);
        if (n > 0 && raw[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        push(
          v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
            ? Number(v)
            : v,
        );
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        push(take(u64()).slice());
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x74: // TUPLE
        push(tuple(popMark().map((item) => value(item, 'a tuple item'))));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const n = op - 0x84;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(popValue('a tuple item'));
        push(tuple(items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark().map((item) => value(item, 'a list item')));
        break;
      case 0x61: {
        // APPEND
        const item = popValue('a list item');
        listOf(top('APPEND'), 'APPEND').push(item);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark().map((item) => value(item, 'a list item'));
        const list = listOf(top('APPENDS'), 'APPENDS');
        for (const item of items) list.push(item); // no spread: a million items would overflow the call stack
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PickleDict());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of items');
        const dict = new PickleDict();
        for (let i = 0; i < items.length; i += 2)
          dict.set(key(value(items[i], 'a key')), value(items[i + 1], 'a value'));
        push(dict);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = popValue('a value');
        const k = key(popValue('a key'));
        dictOf(top('SETITEM'), 'SETITEM').set(k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const dict = dictOf(top('SETITEMS'), 'SETITEMS');
        for (let i = 0; i < items.length; i += 2)
          dict.set(key(value(items[i], 'a key')), value(items[i + 1], 'a value'));
        break;
      }
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = op === 0x68 ? u8() : u32();
        if (!memo.has(index)) fail(`memo entry ${index} was never stored`);
        push(memo.get(index)!);
        break;
      }
      case 0x71: // BINPUT
      case 0x72: // LONG_BINPUT
        if (!stack.length) fail('PUT on an empty stack');
        memo.set(op === 0x71 ? u8() : u32(), stack[stack.length - 1]);
        break;
      case 0x94: // MEMOIZE
        if (!stack.length) fail('MEMOIZE on an empty stack');
        memo.set(memo.size, stack[stack.length - 1]);
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line();
        resolveGlobal(module, line());
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = popValue('a global name');
        const module = popValue('a global module');
        if (typeof module !== 'string' || typeof name !== 'string')
          fail('STACK_GLOBAL without two strings');
        resolveGlobal(module as string, name as string);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = popValue('the arguments');
        const callee = pop();
        if (!(callee instanceof GlobalRef))
          return refuse('a call of something that is not a global');
        if (!Array.isArray(args) || !Object.isFrozen(args))
          fail('REDUCE without an argument tuple');
        if (!callee.global.call)
          refuse(`the pickle calls ${callee.name}, which is not callable here`);
        push(callee.global.call!(args as PickleTuple));
        break;
      }
      case 0x62: {
        // BUILD: only an OrderedDict's attributes (`_metadata`) are accepted.
        const state = popValue('the state');
        const target = top('BUILD');
        if (!(target instanceof PickleDict) || !target.ordered || !(state instanceof PickleDict))
          refuse('BUILD (setting object state) outside an OrderedDict');
        for (const [k, v] of state as PickleDict) {
          if (typeof k !== 'string') fail('BUILD with a non-string attribute');
          (target as PickleDict).attributes.set(k as string, v);
        }
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = popValue('a persistent id');
        if (!options.persistentLoad) refuse('a persistent reference outside a torch archive');
        push(options.persistentLoad!(pid));
        break;
      }
      default:
        refuse(
          `pickle opcode 0x${op.toString(16).padStart(2, '0')} (${OPCODE_NAMES[op] ?? 'unknown'}) at byte ${at} is not part of a plain state dict`,
        );
    }
  }
}

/** Names of the opcodes refused above, for the message. */
const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST',
  0x6f: 'OBJ',
  0x81: 'NEWOBJ',
  0x92: 'NEWOBJ_EX',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x50: 'PERSID',
  0x49: 'INT',
  0x4c: 'LONG',
  0x46: 'FLOAT',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x67: 'GET',
  0x70: 'PUT',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};
