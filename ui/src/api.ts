// Requests to the registry's read API, same origin only, with the reader's key as a header.

/** An HTTP error answer, in the API's one error shape `{"error": {code, message, details}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }

  /** Whether the registry asks for (another) key. */
  get needsKey(): boolean {
    return this.status === 401;
  }

  /** Read an error answer; its body may be anything (a proxy's page, nothing at all). */
  static async from(response: Response): Promise<ApiError> {
    let code = `http-${response.status}`;
    let message = response.statusText || `HTTP ${response.status}`;
    try {
      const body: unknown = await response.json();
      const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
      if (typeof error?.code === "string") code = error.code;
      if (typeof error?.message === "string") message = error.message;
    } catch {
      // not the API's shape: keep the status line
    }
    const retry = Number(response.headers.get("Retry-After"));
    return new ApiError(response.status, code, message, Number.isFinite(retry) && retry > 0 ? retry : null);
  }
}

/** The read API of the registry that served this page. */
export class Api {
  /** The reader's key, kept in memory only: sent as `Authorization: Bearer`, never in a URL. */
  private key: string | null = null;

  setKey(key: string | null): void {
    this.key = key;
  }

  get hasKey(): boolean {
    return this.key !== null;
  }

  /** GET `path`; the response if it succeeded, else `ApiError`. */
  async get(path: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    const all = new Headers(headers);
    if (this.key !== null) all.set("Authorization", `Bearer ${this.key}`);
    const response = await fetch(path, {
      headers: all,
      signal,
      cache: "no-store",
      credentials: "same-origin",
      redirect: "error",
    });
    if (!response.ok) throw await ApiError.from(response);
    return response;
  }

  /** GET `path` as JSON. */
  async json<T>(path: string, headers: Record<string, string> = {}): Promise<T> {
    return (await (await this.get(path, headers)).json()) as T;
  }
}
