/**
 * Splits a streamed `content` that may start with inline thinking, `<think>…</think>`, as older
 * llama.cpp builds and R1 distills write it. Works piece by piece: reasoning goes out as it
 * arrives; only what could still be part of a tag (at most 7 characters) and whitespace at the
 * edges of the think block are held back.
 *
 * Rules:
 * - the block counts only at the very start of the answer (leading whitespace allowed); an answer
 *   that starts with anything else is all content, passed through untouched from then on;
 * - whitespace right after `<think>`, right before `</think>` and right after `</think>` is dropped
 *   (models write `<think>\n…\n</think>\n\n`); everything else is kept exactly;
 * - a stream that ends inside the block gives what it had as reasoning (no content).
 */
export interface SplitPiece {
  type: 'reasoning' | 'content';
  text: string;
}

const OPEN = '<think>';
const CLOSE = '</think>';

type State = 'start' | 'think' | 'after' | 'content';

export class ThinkTagSplitter {
  private state: State = 'start';
  private held = '';
  /** Inside the block, before its first non-whitespace character. */
  private thinkStart = false;

  push(text: string): SplitPiece[] {
    if (!text) return [];
    if (this.state === 'content') return [{ type: 'content', text }];
    this.held += text;
    const out: SplitPiece[] = [];
    this.drain(out);
    return out;
  }

  /** The end of the stream: whatever was held back, as what it most likely was. */
  flush(): SplitPiece[] {
    const held = this.held;
    this.held = '';
    if (!held) return [];
    switch (this.state) {
      case 'start':
        // Only whitespace or the beginning of "<think>" came: that was the answer.
        this.state = 'content';
        return [{ type: 'content', text: held }];
      case 'think': {
        const text = held.replace(/\s+$/, '');
        return text ? [{ type: 'reasoning', text }] : [];
      }
      case 'after':
        return [];
      case 'content':
        return [{ type: 'content', text: held }];
    }
  }

  private drain(out: SplitPiece[]): void {
    for (;;) {
      switch (this.state) {
        case 'start': {
          const rest = this.held.replace(/^\s+/, '');
          if (rest.startsWith(OPEN)) {
            this.held = rest.slice(OPEN.length);
            this.state = 'think';
            this.thinkStart = true;
            continue;
          }
          // Whitespace only, or a prefix of the tag: wait for more.
          if (OPEN.startsWith(rest)) return;
          this.state = 'content';
          out.push({ type: 'content', text: this.held });
          this.held = '';
          return;
        }
        case 'think': {
          if (this.thinkStart) {
            this.held = this.held.replace(/^\s+/, '');
            if (!this.held) return;
            this.thinkStart = false;
          }
          const end = this.held.indexOf(CLOSE);
          if (end >= 0) {
            const text = this.held.slice(0, end).replace(/\s+$/, '');
            if (text) out.push({ type: 'reasoning', text });
            this.held = this.held.slice(end + CLOSE.length);
            this.state = 'after';
            continue;
          }
          // Hold a possible partial closing tag, and the whitespace before it.
          let keepFrom = this.held.length - partialSuffix(this.held, CLOSE);
          while (keepFrom > 0 && /\s/.test(this.held[keepFrom - 1])) keepFrom--;
          if (keepFrom > 0) out.push({ type: 'reasoning', text: this.held.slice(0, keepFrom) });
          this.held = this.held.slice(keepFrom);
          return;
        }
        case 'after': {
          const rest = this.held.replace(/^\s+/, '');
          this.held = '';
          if (!rest) return;
          this.state = 'content';
          out.push({ type: 'content', text: rest });
          return;
        }
        case 'content':
          if (this.held) out.push({ type: 'content', text: this.held });
          this.held = '';
          return;
      }
    }
  }
}

/** Length of the longest proper prefix of `tag` that `text` ends with. */
function partialSuffix(text: string, tag: string): number {
  for (let k = Math.min(tag.length - 1, text.length); k > 0; k--) {
    if (text.endsWith(tag.slice(0, k))) return k;
  }
  return 0;
}
