// Progressive enhancement only: every page works without this file.
import { initAll } from "./nhsuk/nhsuk-frontend.min.js";

document.body.classList.add("nhsuk-frontend-supported");
initAll();

// The try-it form: re-evaluate (a dry run) whenever an answer changes and swap in the new outcome.
// Answers can change faster than the service replies: only the newest reply is shown.
const form = document.querySelector("form[data-live='true']");
if (form) {
  let latest = 0;
  form.addEventListener("change", async () => {
    const mine = ++latest;
    const response = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" });
    const text = await response.text();
    if (mine !== latest) {
      return;
    }
    const fresh = new DOMParser().parseFromString(text, "text/html").getElementById("try-result");
    const current = document.getElementById("try-result");
    if (fresh && current) {
      current.replaceWith(fresh);
    }
  });
}
