// "Compare with the source": the match's source lines and this file's lines in VS Code's diff
// editor, as two read-only virtual documents (scheme stacklens-evidence). The server's own
// `stacklens.showDiff` (a unified diff opened with window/showDocument, for other editors) is
// routed here by the language client's middleware (server.ts).
import * as vscode from 'vscode';
import { diffDocs, EvidenceAnswer } from './evidenceDocs';

export const EVIDENCE_SCHEME = 'stacklens-evidence';
const MAX_DOCS = 40; // virtual documents kept: the last few comparisons stay reopenable

class EvidenceDocuments implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.path) ?? '';
  }

  put(path: string, text: string): vscode.Uri {
    this.texts.delete(path);
    this.texts.set(path, text);
    while (this.texts.size > MAX_DOCS) this.texts.delete(this.texts.keys().next().value as string);
    return vscode.Uri.from({ scheme: EVIDENCE_SCHEME, path });
  }
}

const documents = new EvidenceDocuments();
let counter = 0;

export function registerEvidence(context: vscode.ExtensionContext): void {
  context.subscriptions.push(vscode.workspace.registerTextDocumentContentProvider(EVIDENCE_SCHEME, documents));
}

/** Asks the server for a highlight's evidence (`{uri, id}`) and opens the diff editor. */
export async function compareWithSource(
  evidence: (arg: unknown) => Thenable<unknown> | Promise<unknown>,
  arg: unknown,
): Promise<{ shown: boolean }> {
  const answer = (await evidence(arg)) as EvidenceAnswer | undefined;
  const docs = diffDocs(answer, `m${++counter}`);
  if (typeof docs === 'string') {
    void vscode.window.showInformationMessage(docs);
    return { shown: false };
  }
  const left = documents.put(docs.left.path, docs.left.text);
  const right = documents.put(docs.right.path, docs.right.text);
  await vscode.commands.executeCommand('vscode.diff', left, right, docs.title, { preview: true });
  return { shown: true };
}
