// Translates the extension's settings (flat `stacklens.*` keys in VS Code) into the configuration
// object the language server validates (docs/lsp.md). Pure: no `vscode` import, so it is unit tested.
// The server rejects unknown keys (pydantic extra="forbid"), which is why VS Code's raw section is
// never forwarded as is: editor-only keys such as `pythonPath` would make the whole layer invalid.
// The server does not run in the workspace folder (launch.ts), so relative paths are resolved here.
import { resolvePath } from './launch';

/** Reads one setting below `stacklens.` (e.g. "completion.model"); undefined when absent. */
export type Getter = (key: string) => unknown;

/** API tokens live in SecretStorage, never in settings.json. */
export interface Tokens {
  completion?: string;
  membership?: string;
}

/** Where relative paths in settings point: the workspace folder (the server's cwd is not it). */
export interface PathBase {
  workspaceFolder?: string;
  home?: string;
  exists?: (p: string) => boolean;
}

/** A path setting made absolute (an index directory is always a path). */
function pathSetting(v: string | null, base: PathBase): string | null {
  return v === null ? null : resolvePath(v, base.workspaceFolder, base.home);
}

/** The in-process model is a hub id ("bigcode/starcoder2-3b") or a local directory: only what is
 * plainly a path (./, ../, ~, ${workspaceFolder}) or exists in the workspace is resolved. */
function modelSetting(v: string | null, base: PathBase): string | null {
  if (v === null) return null;
  if (/^(\.\.?([\\/]|$)|~|\$\{workspaceFolder\})/.test(v)) return pathSetting(v, base);
  const local = pathSetting(v, base);
  return local !== null && local !== v && base.exists?.(local) ? local : v;
}

/** Settings whose change needs a new server process (they shape its command line). */
export const RESTART_KEYS = ['stacklens.pythonPath', 'stacklens.server.extraArgs', 'stacklens.logLevel'];

/** Settings the server reads; a change is pushed with workspace/didChangeConfiguration. */
export const SERVER_SECTION = 'stacklens';

function str(get: Getter, key: string): string | null {
  const v = get(key);
  // null means "not set here" to the server's layer merge, so empty strings become null.
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

function num(get: Getter, key: string): number | null {
  const v = get(key);
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function bool(get: Getter, key: string): boolean | null {
  const v = get(key);
  return typeof v === 'boolean' ? v : null;
}

function list(get: Getter, key: string): string[] | null {
  const v = get(key);
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null;
}

/** Diagnostic severities the server accepts (docs/lsp.md). */
export const SEVERITIES = ['hint', 'information', 'warning', 'error'] as const;
export const DEFAULT_SEVERITY = 'hint';

function severity(get: Getter, key: string): string {
  const v = str(get, key);
  return v !== null && (SEVERITIES as readonly string[]).includes(v) ? v : DEFAULT_SEVERITY;
}

/** True when the user configured a completion engine in VS Code (otherwise the server's own
 * defaults / STACKLENS_* environment decide, and we must not override them with a half-set one). */
export function completionConfigured(get: Getter): boolean {
  const backend = str(get, 'completion.backend') ?? 'transformers';
  return str(get, 'completion.model') !== null || str(get, 'completion.url') !== null || backend !== 'transformers';
}

/** The server's configuration object (camelCase keys, nulls for unset values). */
export function toServerConfig(get: Getter, tokens: Tokens = {}, base: PathBase = {}): Record<string, unknown> {
  const backend = str(get, 'completion.backend') ?? 'transformers';
  let completion: Record<string, unknown> | null = null;
  if (completionConfigured(get)) {
    const template = str(get, 'completion.template');
    completion = {
      backend,
      model: (backend === 'transformers' ? modelSetting(str(get, 'completion.model'), base) : str(get, 'completion.model')) ?? '',
      url: backend === 'transformers' ? null : str(get, 'completion.url'),
      template: template === 'auto' ? null : template,
      contextWindow: num(get, 'completion.contextWindow'),
      maxNewTokens: num(get, 'completion.maxNewTokens'),
      temperature: num(get, 'completion.temperature'),
      apiToken: tokens.completion || null,
    };
    // `device` only exists for the in-process backend; other backends forbid the key.
    if (backend === 'transformers') completion.device = str(get, 'completion.device');
  }
  return {
    completion,
    membership: {
      index: pathSetting(str(get, 'membership.index'), base),
      url: str(get, 'membership.url'),
      token: tokens.membership || null,
      policy: str(get, 'membership.policy'),
      licenseBlock: list(get, 'membership.licenseBlock'),
      licenseAllow: list(get, 'membership.licenseAllow'),
      unknownLicense: str(get, 'membership.unknownLicense'),
      ignoreCommonAbove: num(get, 'membership.ignoreCommonAbove'),
      searchPageUrl: str(get, 'membership.searchPageUrl'),
      minChars: num(get, 'membership.minChars'),
      background: bool(get, 'membership.background'),
      auditLog: pathSetting(str(get, 'membership.auditLog'), base),
      auditLogIncludeCode: bool(get, 'membership.auditLogIncludeCode'),
    },
    debounceMs: num(get, 'debounceMs'),
    maxCandidates: num(get, 'maxCandidates'),
    logLevel: str(get, 'logLevel'),
    // The extension draws its own underline and gutter mark on every match (decorations.ts), so
    // by default it asks for hints: a warning squiggle would underline the same text a second time.
    diagnosticSeverity: severity(get, 'diagnosticSeverity'),
    blockedDiagnosticSeverity: severity(get, 'blockedDiagnosticSeverity'),
  };
}

/** Whether a configuration change event touches a setting that needs a server restart. */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return RESTART_KEYS.some(affects);
}
