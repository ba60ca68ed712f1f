import { completionsUrl, errorObject, isDeepSeekHost, isHtmlPage, normalizeErrorBody, sendsThinkingField, unsupportedParams } from './openai-compat';

describe('sendsThinkingField', () => {
  it.each([
    ['auto', 'https://api.deepseek.com', 'anything', true],
    ['auto', 'https://api.deepseek.com/v1', 'deepseek-v4-pro', true],
    ['auto', 'http://127.0.0.1:9999', 'deepseek-v4-flash', true],
    ['auto', 'https://litellm.internal/v1', 'deepseek-reasoner', true],
    ['auto', 'http://localhost:11434/v1', 'deepseek-r1:8b', false],
    ['auto', 'http://gpu:8000/v1', 'deepseek-ai/DeepSeek-R1-Distill-Qwen-7B', false],
    ['auto', 'https://openrouter.ai/api/v1', 'deepseek/deepseek-r1', false],
    ['auto', 'http://localhost:8080/v1', 'qwen3', false],
    [undefined, 'http://localhost:8080/v1', 'qwen3', false],
    ['deepseek', 'http://localhost:8080/v1', 'qwen3', true],
    ['none', 'https://api.deepseek.com', 'deepseek-v4-flash', false],
  ] as const)('%s, %s, %s → %s', (mode, url, model, expected) => {
    expect(sendsThinkingField(mode, url, model)).toBe(expected);
  });

  it('isDeepSeekHost does not fall for look-alikes', () => {
    expect(isDeepSeekHost('https://api.deepseek.com.evil.example')).toBe(false);
    expect(isDeepSeekHost('https://notdeepseek.com')).toBe(false);
    expect(isDeepSeekHost('not a url')).toBe(false);
  });
});

describe('unsupportedParams', () => {
  const body = { model: 'm', messages: [], stream: true, stream_options: { include_usage: true }, thinking: { type: 'enabled' } };

  it('OpenAI: "Unrecognized request argument supplied: thinking" names thinking', () => {
    expect(unsupportedParams(400, { message: 'Unrecognized request argument supplied: thinking', param: null }, body)).toEqual({
      params: ['thinking'],
      named: true,
    });
  });

  it('by the `param` field alone', () => {
    expect(unsupportedParams(400, { message: 'Bad request', param: 'stream_options' }, body)).toEqual({
      params: ['stream_options'],
      named: true,
    });
  });

  it('pydantic loc, 422', () => {
    expect(unsupportedParams(422, { message: 'thinking: Extra inputs are not permitted', param: 'thinking' }, body)?.params).toEqual(['thinking']);
  });

  it('generic wording without a name: all our optional fields, not named', () => {
    expect(unsupportedParams(400, { message: 'extra fields not permitted' }, body)).toEqual({
      params: ['thinking', 'stream_options'],
      named: false,
    });
  });

  it('not about our fields: nothing', () => {
    expect(unsupportedParams(400, { message: 'Invalid request body' }, body)).toBeUndefined();
    expect(unsupportedParams(422, { message: 'Invalid parameters' }, body)).toBeUndefined();
    expect(unsupportedParams(400, { message: "Unsupported value: 'temperature'", param: 'temperature' }, { ...body, temperature: 5 })).toBeUndefined();
    expect(unsupportedParams(400, { message: 'Unsupported model' }, body)).toBeUndefined();
    // DeepSeek's own 400 about thinking + tool calls is not a refusal of the field.
    expect(unsupportedParams(400, { message: 'Missing `reasoning_content` field in the assistant message at message index 2' }, body)).toBeUndefined();
    expect(unsupportedParams(500, { message: 'Unrecognized request argument supplied: thinking' }, body)).toBeUndefined();
  });

  it('fields not in the body, or already dropped, are not candidates', () => {
    const { thinking: _t, ...noThinking } = body;
    expect(unsupportedParams(400, { message: 'Unrecognized request argument supplied: thinking' }, noThinking)).toBeUndefined();
    expect(unsupportedParams(400, { message: 'Unrecognized request argument supplied: thinking' }, body, new Set(['thinking']))).toBeUndefined();
  });
});

describe('normalizeErrorBody', () => {
  const norm = (text: string) => JSON.parse(normalizeErrorBody(text));

  it('keeps OpenAI / DeepSeek bodies as they are', () => {
    const text = JSON.stringify({ error: { message: 'Insufficient Balance', type: 'unknown_error', param: null, code: 'x' } });
    expect(normalizeErrorBody(text)).toBe(text);
  });

  it('an HTML error page (a proxy in front of the model list too) by its title, not its markup', () => {
    const page = '<!DOCTYPE html>\r\n<html><head><title>502 Bad\r\n Gateway</title></head><body><h1>nginx</h1></body></html>';
    expect(norm(page).error.message).toBe('502 Bad Gateway');
    expect(norm('<html><body>no title</body></html>').error.message).toBe('an HTML page');
  });

  it('vLLM top-level, Ollama string, FastAPI detail, plain text', () => {
    expect(norm(JSON.stringify({ object: 'error', message: 'bad', type: 'BadRequestError', param: null, code: 400 })).error).toEqual({
      message: 'bad',
      type: 'BadRequestError',
      param: null,
      code: 400,
    });
    expect(norm(JSON.stringify({ error: 'model "x" not found, try pulling it first' })).error.message).toBe('model "x" not found, try pulling it first');
    expect(norm(JSON.stringify({ detail: [{ loc: ['body', 'thinking'], msg: 'extra fields not permitted' }] })).error).toMatchObject({
      message: 'thinking: extra fields not permitted',
      param: 'thinking',
    });
    expect(norm('404 page not found').error.message).toBe('404 page not found');
    expect(normalizeErrorBody('')).toBe('');
  });
});

describe('errorObject (error answers and errors inside a stream alike)', () => {
  it('reads every shape normalizeErrorBody reads, keeping a status that a bare object names', () => {
    expect(errorObject({ error: { message: 'overloaded', type: 'server_error', code: null } })).toEqual({
      message: 'overloaded',
      type: 'server_error',
      code: null,
    });
    expect(errorObject({ message: 'slow down', status: 429 })).toEqual({ message: 'slow down', type: null, param: null, code: null, status: 429 });
    expect(errorObject({ error: 'model "x" not found' }).message).toBe('model "x" not found');
    expect(errorObject({ error: { detail: 'no such model', code: 404 } })).toMatchObject({ message: 'no such model', code: 404 });
    expect(errorObject('<html><head><title>502 Bad Gateway</title></head></html>').message).toBe('502 Bad Gateway');
  });
});

describe('isHtmlPage and completionsUrl', () => {
  it('tells an HTML page from JSON and events; the completions URL is the base URL plus /chat/completions', () => {
    expect(['<!DOCTYPE html><html>', '  <html>', '<title>x</title>'].map(isHtmlPage)).toEqual([true, true, true]);
    expect(['{"error":1}', 'data: {}', '<p>x</p>'].map(isHtmlPage)).toEqual([false, false, false]);
    expect(completionsUrl(' http://127.0.0.1:8000/v1/ ').href).toBe('http://127.0.0.1:8000/v1/chat/completions');
  });
});
