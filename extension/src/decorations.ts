// Match highlights: an underline plus a gutter mark on every range the server reports as found in
// the corpus (diagnostics with source "stacklens"). A diagnostic's squiggle looks like any lint warning;
// the decoration makes "this code came from elsewhere" recognisable at a glance. The extension asks
// for "hint" diagnostics by default (settings.ts), so VS Code draws no second underline below ours.
import * as vscode from 'vscode';
import { blockedOf, DIAGNOSTIC_SOURCE, Match, matchesOf } from './matches';

export interface MatchDiagnostic {
  diagnostic: vscode.Diagnostic;
  matches: Match[];
  blocked: boolean; // a licence the policy blocks (diagnostic data.blocked)
}

/** The server's match diagnostics for a document. languageclient keeps LSP `data` on the object. */
export function matchDiagnostics(uri: vscode.Uri): MatchDiagnostic[] {
  return vscode.languages.getDiagnostics(uri)
    .filter((d) => d.source === DIAGNOSTIC_SOURCE)
    .map((d) => {
      const data = (d as vscode.Diagnostic & { data?: unknown }).data;
      return {
        diagnostic: d,
        matches: matchesOf(data),
        blocked: blockedOf(data, d.severity === vscode.DiagnosticSeverity.Error),
      };
    });
}

export class MatchDecorations implements vscode.Disposable {
  private readonly warn: vscode.TextEditorDecorationType;
  private readonly block: vscode.TextEditorDecorationType;
  private readonly subs: vscode.Disposable[] = [];

  constructor(context: vscode.ExtensionContext, private readonly onCount: (uri: vscode.Uri, n: number) => void) {
    const make = (color: string, icon: string) => vscode.window.createTextEditorDecorationType({
      textDecoration: `underline dotted ${color}`,
      backgroundColor: color + '1a', // ~10% alpha: visible on light and dark themes
      gutterIconPath: context.asAbsolutePath(icon),
      gutterIconSize: 'contain',
      overviewRulerColor: color,
      overviewRulerLane: vscode.OverviewRulerLane.Right,
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
    });
    this.warn = make('#e2a400', 'media/match.svg');
    this.block = make('#e51400', 'media/match-blocked.svg');
    this.subs.push(
      vscode.languages.onDidChangeDiagnostics((e) => {
        const changed = new Set(e.uris.map((u) => u.toString()));
        for (const ed of vscode.window.visibleTextEditors) {
          if (changed.has(ed.document.uri.toString())) this.apply(ed);
        }
      }),
      vscode.window.onDidChangeVisibleTextEditors((eds) => eds.forEach((ed) => this.apply(ed))),
      vscode.window.onDidChangeActiveTextEditor((ed) => ed && this.apply(ed)),
    );
    vscode.window.visibleTextEditors.forEach((ed) => this.apply(ed));
  }

  apply(editor: vscode.TextEditor): void {
    const all = matchDiagnostics(editor.document.uri);
    editor.setDecorations(this.warn, all.filter((m) => !m.blocked).map((m) => m.diagnostic.range));
    editor.setDecorations(this.block, all.filter((m) => m.blocked).map((m) => m.diagnostic.range));
    this.onCount(editor.document.uri, all.length);
  }

  dispose(): void {
    this.subs.forEach((s) => s.dispose());
    this.warn.dispose();
    this.block.dispose();
  }
}
