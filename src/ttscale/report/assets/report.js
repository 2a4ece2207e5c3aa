// Filter and sort the candidate gallery in place; every value read here comes from data-* attributes.
(() => {
  const form = document.getElementById("controls");
  if (!form) return;
  const gallery = document.getElementById("gallery");
  const sections = Array.from(gallery.querySelectorAll("section.prompt"));
  const field = (id) => document.getElementById(id);

  function apply() {
    const task = field("f-task").value;
    const verdict = field("f-verdict").value;
    const keptOnly = field("f-kept").checked;
    const min = parseFloat(field("f-min").value);
    const text = field("f-text").value.trim().toLowerCase();
    let prompts = 0;
    let cards = 0;
    for (const section of sections) {
      const promptOk = (!task || section.dataset.task === task) &&
        (!text || section.dataset.prompt.toLowerCase().includes(text));
      let visible = 0;
      for (const card of section.querySelectorAll(".card")) {
        const ok = promptOk && (!verdict || card.dataset.verdict === verdict) &&
          (!keptOnly || card.dataset.kept === "1") &&
          (Number.isNaN(min) || parseFloat(card.dataset.score) >= min);
        card.hidden = !ok;
        if (ok) visible += 1;
      }
      section.hidden = visible === 0;
      if (visible) { prompts += 1; cards += visible; }
    }
    field("shown").value = `${prompts} prompts · ${cards} candidates shown`;
  }

  const byNumber = (key, sign) => (a, b) => sign * (parseFloat(a.dataset[key]) - parseFloat(b.dataset[key]));
  const promptOrders = {
    index: byNumber("index", 1),
    "best-desc": byNumber("best", -1),
    "best-asc": byNumber("best", 1),
    task: (a, b) => a.dataset.task.localeCompare(b.dataset.task) || byNumber("index", 1)(a, b),
  };
  const cardOrders = { rank: byNumber("rank", 1), index: byNumber("index", 1) };

  function sort() {
    for (const section of sections.slice().sort(promptOrders[field("s-prompts").value])) gallery.append(section);
    const order = cardOrders[field("s-cards").value];
    for (const section of sections) {
      const grid = section.querySelector(".grid");
      for (const card of Array.from(grid.children).sort(order)) grid.append(card);
    }
  }

  const update = (event) => {
    if (event.target.id.startsWith("s-")) sort();
    apply();
  };
  form.addEventListener("input", update); // typing in the text fields
  form.addEventListener("change", update); // selects and the checkbox (not every driver sends "input" for them)
  form.addEventListener("submit", (event) => event.preventDefault());
  apply();
})();
