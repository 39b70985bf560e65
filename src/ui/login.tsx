/** The token form shown instead of any data while the request has no valid credential. */
export function LoginForm(props: { failed: boolean }) {
  return (
    <section id="login">
      <h2>Log in</h2>
      <form method="post" action="/ui/login">
        <p>This pitstop requires its token (PITSTOP_TOKEN). It is kept in an HttpOnly cookie for this site.</p>
        <input type="password" name="token" autocomplete="current-password" aria-label="Token" required autofocus />{" "}
        <button type="submit">Log in</button>
        {props.failed && <p class="bad">Wrong token.</p>}
      </form>
    </section>
  );
}
