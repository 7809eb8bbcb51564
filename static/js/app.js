// Placeholder: the chat UI arrives with the framework issue.
document.documentElement.dataset.ready = "true";
