import { describe, expect, test } from 'bun:test'
import { loadConfig, parseBytes } from '../../src/config.ts'

describe('configuration', () => {
  test('defaults: localhost:3000, ./data, 100 GiB files, 8 MiB chunks', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({ port: 3000, host: '127.0.0.1', adminPassword: null, maxFileBytes: 100 * 1024 ** 3, chunkBytes: 8 * 1024 ** 2 })
    expect(config.dataDir).toBe(`${process.cwd()}/data`)
  })

  test.each([
    ['512', 512],
    ['64K', 65536],
    ['8M', 8388608],
    ['8MiB', 8388608],
    ['20G', 20 * 1024 ** 3],
    ['1.5T', 1.5 * 1024 ** 4],
  ])('size %s is %i bytes', (text, bytes) => {
    expect(parseBytes(text, 'X')).toBe(bytes)
  })

  test.each([
    [{ PORT: 'http' }, /PORT must be a whole number/],
    [{ PORT: '70000' }, /PORT must be a whole number/],
    [{ MAX_FILE_SIZE: 'lots' }, /MAX_FILE_SIZE must be a size/],
    [{ ADMIN_PASSWORD: 'short' }, /at least 8 characters/],
    [{ CHUNK_SIZE: '128M' }, /CHUNK_SIZE must not exceed MAX_CHUNK_SIZE/],
    [{ TRUST_PROXY: 'maybe' }, /TRUST_PROXY must be true or false/],
  ])('%p is refused with a clear message', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message)
  })
})
