/** An issue named by its GitHub URL. */
export interface IssueRef {
  owner: string;
  repo: string;
  number: number;
}

/**
 * `https://github.com/OWNER/REPO/issues/N`, optionally with a trailing slash, a query or a fragment
 * (a link copied from the browser often ends in `#issuecomment-…`). Owner and repository names use
 * GitHub's own character sets.
 */
export const ISSUE_URL = /^https:\/\/github\.com\/([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\/([A-Za-z0-9._-]{1,100})\/issues\/([1-9][0-9]{0,9})\/?(?:[?#].*)?$/;

/** The issue a URL names, or undefined when it is not an issue URL. */
export function parseIssueUrl(url: string): IssueRef | undefined {
  const match = ISSUE_URL.exec(url.trim());
  if (!match || match[2] === '.' || match[2] === '..') return undefined;
  return { owner: match[1], repo: match[2].replace(/\.git$/, ''), number: Number(match[3]) };
}

export function issueLabel(ref: IssueRef): string {
  return `${ref.owner}/${ref.repo}#${ref.number}`;
}
