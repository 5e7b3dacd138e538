/**
 * A small reader of the protobuf text format, enough for Triton's config.pbtxt: `name: value`, `name { … }`,
 * `name: { … }`, `name: [ v, v ]`, `name [ { … }, { … } ]`, repeated fields, `#` comments, quoted strings,
 * numbers and enum identifiers. Written for the tests (the SDK only writes config.pbtxt).
 * Usage: `const cfg = parsePbtxt(text); cfg.get('max_batch_size')`.
 */

/** An enum value (an unquoted identifier such as TYPE_FP32 or KIND_GPU). */
export class PbEnum {
  constructor(readonly ident: string) {}
}

export type PbValue = string | number | boolean | PbEnum | PbMessage;

/** A message: each field name maps to its values in order (repeated fields have several). */
export class PbMessage {
  readonly fields = new Map<string, PbValue[]>();

  add(name: string, value: PbValue): void {
    const list = this.fields.get(name);
    if (list) list.push(value);
    else this.fields.set(name, [value]);
  }

  /** All values of a field (empty when absent). */
  all(name: string): PbValue[] {
    return this.fields.get(name) ?? [];
  }

  /** The single value of a field; throws when it is absent or repeated. */
  get(name: string): PbValue {
    const list = this.all(name);
    if (list.length !== 1) throw new Error(`pbtxt: field "${name}" has ${list.length} values`);
    return list[0] as PbValue;
  }

  has(name: string): boolean {
    return this.fields.has(name);
  }

  string(name: string): string {
    const v = this.get(name);
    if (typeof v !== 'string') throw new Error(`pbtxt: field "${name}" is not a string`);
    return v;
  }

  number(name: string): number {
    const v = this.get(name);
    if (typeof v !== 'number') throw new Error(`pbtxt: field "${name}" is not a number`);
    return v;
  }

  enumValue(name: string): string {
    const v = this.get(name);
    if (!(v instanceof PbEnum)) throw new Error(`pbtxt: field "${name}" is not an enum value`);
    return v.ident;
  }

  message(name: string): PbMessage {
    const v = this.get(name);
    if (!(v instanceof PbMessage)) throw new Error(`pbtxt: field "${name}" is not a message`);
    return v;
  }

  messages(name: string): PbMessage[] {
    return this.all(name).map((v) => {
      if (!(v instanceof PbMessage)) throw new Error(`pbtxt: field "${name}" holds a non-message value`);
      return v;
    });
  }

  numbers(name: string): number[] {
    return this.all(name).map((v) => {
      if (typeof v !== 'number') throw new Error(`pbtxt: field "${name}" holds a non-number value`);
      return v;
    });
  }
}

type Token = { kind: 'ident' | 'string' | 'number' | 'punct'; text: string; value?: string | number };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if ('{}[]:,;<>'.includes(c)) {
      out.push({ kind: 'punct', text: c });
      i++;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\') {
          const n = src[j + 1];
          s += n === 'n' ? '\n' : n === 't' ? '\t' : (n ?? '');
          j += 2;
        } else {
          s += src[j];
          j++;
        }
      }
      if (j >= src.length) throw new Error('pbtxt: unterminated string');
      out.push({ kind: 'string', text: src.slice(i, j + 1), value: s });
      i = j + 1;
    } else {
      const m = /^[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|^[A-Za-z_][A-Za-z0-9_.]*/.exec(src.slice(i));
      if (m === null) throw new Error(`pbtxt: unexpected character ${JSON.stringify(c)} at ${i}`);
      const text = m[0];
      out.push(/^[A-Za-z_]/.test(text) ? { kind: 'ident', text } : { kind: 'number', text, value: Number(text) });
      i += text.length;
    }
  }
  return out;
}

/** Parse a protobuf text-format message. Throws on syntax errors. */
export function parsePbtxt(src: string): PbMessage {
  const tokens = tokenize(src);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const next = (): Token => {
    const t = tokens[pos++];
    if (t === undefined) throw new Error('pbtxt: unexpected end');
    return t;
  };
  const scalar = (t: Token): PbValue => {
    if (t.kind === 'string') return t.value as string;
    if (t.kind === 'number') return t.value as number;
    if (t.kind === 'ident') return t.text === 'true' ? true : t.text === 'false' ? false : new PbEnum(t.text);
    throw new Error(`pbtxt: unexpected "${t.text}"`);
  };
  const messageBody = (close: string | undefined): PbMessage => {
    const msg = new PbMessage();
    for (;;) {
      const t = peek();
      if (t === undefined) {
        if (close !== undefined) throw new Error(`pbtxt: missing "${close}"`);
        return msg;
      }
      if (close !== undefined && t.text === close) {
        pos++;
        return msg;
      }
      if (t.text === ',' || t.text === ';') {
        pos++;
        continue;
      }
      const name = next();
      if (name.kind !== 'ident') throw new Error(`pbtxt: expected a field name, found "${name.text}"`);
      let colon = false;
      if (peek()?.text === ':') {
        pos++;
        colon = true;
      }
      const v = next();
      if (v.text === '{' || v.text === '<') {
        msg.add(name.text, messageBody(v.text === '{' ? '}' : '>'));
      } else if (v.text === '[') {
        if (peek()?.text === ']') {
          pos++;
          if (!msg.has(name.text)) msg.fields.set(name.text, []);
          continue;
        }
        for (;;) {
          const item = next();
          if (item.text === '{' || item.text === '<') msg.add(name.text, messageBody(item.text === '{' ? '}' : '>'));
          else msg.add(name.text, scalar(item));
          const sep = next();
          if (sep.text === ']') break;
          if (sep.text !== ',') throw new Error(`pbtxt: expected "," or "]", found "${sep.text}"`);
        }
      } else {
        if (!colon) throw new Error(`pbtxt: expected ":" after ${name.text}`);
        msg.add(name.text, scalar(v));
      }
    }
  };
  return messageBody(undefined);
}
