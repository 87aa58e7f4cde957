// Two test workers share the cores: OpenMP's default spin-waiting (fast for one process, see
// native/bridge/torch_thread.h) makes two processes steal each other's cores, so tests wait passively.
process.env.OMP_WAIT_POLICY ??= 'passive';

/** Tests run against the TypeScript sources through ts-jest; worker tests load the built dist/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }] },
  testTimeout: 120000,
  maxWorkers: 2,
};
