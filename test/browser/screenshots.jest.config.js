// On demand, not part of `npm test`: `npm run screenshots` writes docs/screenshots/*.png (the README
// shows them) from test/browser/screenshots.shots.ts, against the real server and FakeDeepSeek.
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  roots: ['<rootDir>/test/browser'],
  testRegex: 'screenshots\\.shots\\.ts$',
  testTimeout: 120000,
};
