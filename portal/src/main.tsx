// The portal's shell: asks the server for the session, shows the login form when one is
// needed (or says that authentication is off), then the navigation and the page the URL's
// fragment names (#/map, #/replications, #/repositories, #/webhooks, #/health).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "./styles.css";
import { call, getJson, messageOf, type Session, setCsrf, whenUnauthorized } from "./api.ts";
import { HealthPage } from "./health-page.tsx";
import { MapPage } from "./map-page.tsx";
import { ReplicationsPage } from "./replications-page.tsx";
import { RepositoriesPage } from "./repositories-page.tsx";
import { WebhooksPage } from "./webhooks-page.tsx";

const pages = [
  { path: "map", title: "Map", view: MapPage },
  { path: "replications", title: "Replications", view: ReplicationsPage },
  { path: "repositories", title: "Repositories", view: RepositoriesPage },
  { path: "webhooks", title: "Webhooks", view: WebhooksPage },
  { path: "health", title: "Health", view: HealthPage },
] as const;

function currentPage(): string {
  return location.hash.replace(/^#\/?/, "") || "map";
}

function App() {
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [page, setPage] = useState(currentPage());
  const adopt = (next: Session) => {
    setCsrf(next.csrf);
    setSession(next);
  };
  useEffect(() => {
    getJson<Session>("/portal/api/session").then(adopt, (e: unknown) => setError(messageOf(e)));
    whenUnauthorized(() =>
      setSession((old) => (old ? { authentication: true, region: old.region } : old)),
    );
    const onHash = () => setPage(currentPage());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  if (error) return <p class="error">The portal cannot reach the registry: {error}</p>;
  if (!session) return <p class="loading">Loading...</p>;
  if (session.authentication && !session.user) return <LoginForm onLogin={adopt} />;
  const Page = (pages.find((p) => p.path === page) ?? pages[0]).view;
  const logout = async () => {
    await call("POST", "/portal/api/logout");
    setCsrf(undefined);
    setSession({ authentication: true, region: session.region });
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Meridian</span>
        <nav aria-label="Pages">
          {pages.map((p) => (
            <a
              key={p.path}
              href={`#/${p.path}`}
              aria-current={p.path === page ? "page" : undefined}
            >
              {p.title}
            </a>
          ))}
        </nav>
        <span class="who">
          {session.user ? (
            <>
              {session.user.name} on {session.region}{" "}
              <button type="button" onClick={() => void logout()}>
                Log out
              </button>
            </>
          ) : (
            <>served by {session.region}</>
          )}
        </span>
      </header>
      {!session.authentication && (
        <p class="banner" role="note">
          Authentication is off: this registry has no users, so it serves only on loopback and
          everyone who reaches it is an admin. Add a user (meridian user add) to require a login.
        </p>
      )}
      {session.user && !session.user.admin && (
        <p class="banner" role="note">
          {session.user.name} is not an admin: the pages that manage replicas and webhooks will be
          refused.
        </p>
      )}
      <main id="main" tabIndex={-1}>
        <Page />
      </main>
    </>
  );
}

function LoginForm(props: { onLogin: (session: Session) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const answer = await call<Session>("POST", "/portal/api/login", {
        body: { username, password },
      });
      setPassword("");
      props.onLogin(answer.body);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={(event) => void submit(event)} aria-labelledby="login-title">
        <h1 id="login-title">Meridian portal</h1>
        <label for="username">Username</label>
        <input
          id="username"
          name="username"
          autocomplete="username"
          value={username}
          onInput={(event) => setUsername((event.target as HTMLInputElement).value)}
          required
        />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          value={password}
          onInput={(event) => setPassword((event.target as HTMLInputElement).value)}
          required
        />
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary wide" disabled={busy}>
          Log in
        </button>
      </form>
    </main>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
