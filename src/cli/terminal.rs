//! Colour on a terminal. A Windows console shows ANSI colour codes as colours only once virtual
//! terminal processing is on for it (Windows 10 1511 and later; Windows Terminal turns it on,
//! the classic console window does not), so mfactl turns it on before colouring, and does not
//! colour where that fails. Elsewhere terminals take ANSI codes as they are.

/// Whether ANSI colour codes written to stdout and stderr show as colours, turning that on
/// where it must be (once per process).
pub fn ansi_colours() -> bool {
    #[cfg(windows)]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(windows::enable_virtual_terminal)
    }
    #[cfg(not(windows))]
    true
}

#[cfg(windows)]
mod windows {
    use windows_sys::Win32::System::Console::{
        ENABLE_VIRTUAL_TERMINAL_PROCESSING, GetConsoleMode, GetStdHandle, STD_ERROR_HANDLE,
        STD_OUTPUT_HANDLE, SetConsoleMode,
    };

    /// Turns virtual terminal processing on for stdout and stderr where they are consoles;
    /// `false` when a console refuses it (before Windows 10). A stream that is no console (a
    /// file, a pipe, mintty's pty) is left alone: whether it is a terminal is decided elsewhere.
    pub fn enable_virtual_terminal() -> bool {
        [STD_OUTPUT_HANDLE, STD_ERROR_HANDLE]
            .into_iter()
            .all(|stream| {
                let mut mode = 0;
                // SAFETY: GetStdHandle returns the process's own handle or null/invalid, for which
                // GetConsoleMode fails; `mode` is a local.
                unsafe {
                    let handle = GetStdHandle(stream);
                    if GetConsoleMode(handle, &mut mode) == 0 {
                        return true;
                    }
                    mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0
                        || SetConsoleMode(handle, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0
                }
            })
    }
}
