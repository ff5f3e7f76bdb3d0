"""Display: a reply as the user sees it (render and sanitize, the reply display, tool calls)."""
