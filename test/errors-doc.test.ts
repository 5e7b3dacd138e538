import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderErrorsDoc } from '../scripts/errors-doc.js';
import { ERROR_CODES, V4sError, isV4sError } from '../src/errors.js';

describe('error codes', () => {
  it('docs/errors.md lists every code (regenerate with `npx tsx scripts/errors-doc.ts`)', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
    assert.equal(doc, renderErrorsDoc());
    for (const code of Object.keys(ERROR_CODES)) assert.ok(doc.includes(`\`${code}\``), code);
  });
  it('V4sError carries its code, details and cause', () => {
    const cause = new Error('root');
    const e = new V4sError('E_MODEL_TENSOR', 'input "x_t": expected float32, found int64', { tensor: 'x_t' }, { cause });
    assert.equal(e.details?.['tensor'], 'x_t');
    assert.equal(e.cause, cause);
    assert.ok(isV4sError(e, 'E_MODEL_TENSOR'));
    assert.equal(isV4sError(new Error('plain')), false);
    assert.equal(isV4sError(e, 'E_CONFIG'), false);
  });
});
