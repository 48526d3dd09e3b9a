// The GraphQL API on the same origin, with the bearer token the person
// pasted. The token lives in sessionStorage only (gone when the tab closes)
// and leaves the page only as the Authorization header of /graphql.

const TOKEN_KEY = "secretlog.console.token";

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** What the token says about its holder (the claims are not secret). */
export interface Claims {
  role: string;
  domainId: string;
  userId?: string;
  subject?: string;
  expires?: Date;
}

export function claimsOf(token: string): Claims | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)));
    if (typeof json.role !== "string" || typeof json.domain_id !== "string") return null;
    return {
      role: json.role,
      domainId: json.domain_id,
      userId: typeof json.user_id === "string" ? json.user_id : undefined,
      subject: typeof json.sub === "string" ? json.sub : undefined,
      expires: typeof json.exp === "number" ? new Date(json.exp * 1000) : undefined,
    };
  } catch {
    return null;
  }
}

export class APIError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export async function gql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
  const token = getToken();
  if (!token) throw new APIError("not signed in", "UNAUTHENTICATED");
  let resp: Response;
  try {
    resp = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify({ query, variables }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new APIError("the server cannot be reached", "UNAVAILABLE");
  }
  let body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = await resp.json();
  } catch {
    throw new APIError(`the server answered ${resp.status}`, "INTERNAL");
  }
  if (body.errors && body.errors.length > 0) {
    const e = body.errors[0];
    throw new APIError(e.message, e.extensions?.code ?? "INTERNAL");
  }
  if (!body.data) throw new APIError("empty answer", "INTERNAL");
  return body.data;
}

export interface FieldChange {
  field: string;
  old: unknown;
  new: unknown;
}

export interface AuditEvent {
  position: string;
  stream: string;
  resourceType: string;
  resourceId: string;
  version: number;
  dataVersion: number;
  type: string;
  actor: { userId: string | null; role: string; domainId: string; subject: string | null };
  occurredAt: string;
  correlationId: string | null;
  changes: FieldChange[];
}

export interface AuditPage {
  results: AuditEvent[];
  nextCursor: string | null;
}

const fields = `results { position stream resourceType resourceId version dataVersion type
  actor { userId role domainId subject } occurredAt correlationId changes { field old new } } nextCursor`;

export interface AuditFilter {
  actorUserId?: string;
  resourceType?: string;
  resourceId?: string;
  types?: string[];
  from?: string;
  to?: string;
}

export const PAGE = 50;

export async function auditEvents(filter: AuditFilter, after: string | null, newestFirst: boolean): Promise<AuditPage> {
  const d = await gql<{ auditEvents: AuditPage }>(
    `query ConsoleAudit($f: AuditFilter, $first: Int, $after: String, $n: Boolean) {
      auditEvents(filter: $f, first: $first, after: $after, newestFirst: $n) { ${fields} } }`,
    { f: filter, first: PAGE, after, n: newestFirst },
  );
  return d.auditEvents;
}

/** The history query of each resource type. */
const historyField: Record<string, [string, string]> = {
  Secret: ["secretHistory", "secretId"],
  UserSecret: ["userSecretHistory", "userSecretId"],
  TrustedSecret: ["trustedSecretHistory", "trustedSecretId"],
};

export const resourceTypes = Object.keys(historyField);

export async function history(resourceType: string, id: string, after: string | null): Promise<AuditPage> {
  const f = historyField[resourceType];
  if (!f) throw new APIError(`unknown resource type ${resourceType}`, "INVALID_ARGUMENT");
  const [field, arg] = f;
  const d = await gql<Record<string, AuditPage>>(
    `query ConsoleHistory($id: ID!, $first: Int, $after: String) {
      ${field}(${arg}: $id, first: $first, after: $after) { ${fields} } }`,
    { id, first: PAGE, after },
  );
  return d[field];
}

/** Event types that record a value being read. */
export const readTypes = ["SecretDataRead", "UserSecretDataRead", "TrustedSecretDataRead"];

export function isRead(e: AuditEvent): boolean {
  return readTypes.includes(e.type.replace(/\.v\d+$/, ""));
}
