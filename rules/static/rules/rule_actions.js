// On a rule's page, grey out the targets an action row does not use (a tier for
// "set tier", a template for "send message", ...), as the action is chosen.
"use strict";
{
  const uses = {
    set_tier: ["tier", "allow_downgrade"],
    issue_coupon: ["coupon_template"],
    award_points: ["points"],
    award_growth_points: ["points"],
    notify: ["notification_template", "channel"],
    add_tag: ["tag"],
    remove_tag: ["tag"],
    webhook: ["webhook_url"],
  };
  const targets = Array.from(new Set(Object.values(uses).flat()));

  function update(row) {
    const kind = row.querySelector("select[name$='-kind']");
    if (!kind) return;
    const used = uses[kind.value] || targets;
    for (const name of targets) {
      const input = row.querySelector(`[name$='-${name}']`);
      if (!input) continue;
      const cell = input.closest("td") || input.parentElement;
      cell.style.opacity = used.includes(name) ? "" : "0.3";
    }
  }

  function updateAll() {
    document.querySelectorAll("#actions-group tr.form-row").forEach(update);
  }

  document.addEventListener("DOMContentLoaded", updateAll);
  document.addEventListener("change", (event) => {
    if (event.target.matches("select[name$='-kind']")) update(event.target.closest("tr"));
  });
  document.addEventListener("formset:added", updateAll);
}
