// The host's hook for the chat pages: the token the host's own sign-in stored.
window.chatSystem = { getToken: () => localStorage.getItem('access_token') };
