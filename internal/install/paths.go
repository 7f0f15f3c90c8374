package install

import (
	"errors"
	"os"
	"path/filepath"
)

// Where the clients keep their MCP servers. Sources, checked 2026:
//
//   - Claude Desktop reads claude_desktop_config.json from
//     ~/Library/Application Support/Claude/ on macOS and %APPDATA%\Claude\
//     on Windows (the MCP quickstart and many server READMEs, e.g.
//     playwright.dev/mcp/clients/claude-desktop; Settings > Developer >
//     Edit Config opens it). Anthropic ships no Linux build; the community
//     builds (github.com/aaddrick/claude-desktop-debian) read
//     ~/.config/Claude/claude_desktop_config.json, i.e. under
//     $XDG_CONFIG_HOME as Electron's userData does. Entries are
//     {"command": ..., "args": [...], "env": {...}} under "mcpServers".
//   - Claude Code keeps user-scope servers in ~/.claude.json under the
//     top-level "mcpServers", local-scope ones in the same file under
//     "projects"/<path>/"mcpServers", and project-scope ones in .mcp.json
//     at the project root (an Anthropic engineer listing the three in
//     github.com/anthropics/claude-code/issues/4193; the scopes table of
//     code.claude.com/docs/en/mcp). `claude mcp add` writes stdio entries
//     as {"type": "stdio", "command": ..., "args": [...], "env": {}}.
const (
	DesktopConfigName = "claude_desktop_config.json"
	CodeUserConfig    = ".claude.json"
	CodeProjectConfig = ".mcp.json"
)

// DesktopConfigFile is Claude Desktop's config file on goos, with getenv
// giving the environment (os.Getenv in real use).
func DesktopConfigFile(goos string, getenv func(string) string) (string, error) {
	switch goos {
	case "darwin":
		home, err := homeDir(goos, getenv)
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "Application Support", "Claude", DesktopConfigName), nil
	case "windows":
		if d := getenv("APPDATA"); d != "" {
			return filepath.Join(d, "Claude", DesktopConfigName), nil
		}
		home, err := homeDir(goos, getenv)
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "AppData", "Roaming", "Claude", DesktopConfigName), nil
	default:
		if d := getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
			return filepath.Join(d, "Claude", DesktopConfigName), nil
		}
		home, err := homeDir(goos, getenv)
		if err != nil {
			return "", err
		}
		return filepath.Join(home, ".config", "Claude", DesktopConfigName), nil
	}
}

// CodeUserConfigFile is Claude Code's ~/.claude.json.
func CodeUserConfigFile(goos string, getenv func(string) string) (string, error) {
	home, err := homeDir(goos, getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(home, CodeUserConfig), nil
}

// CodeProjectConfigFile is the .mcp.json of the project rooted at dir.
func CodeProjectConfigFile(dir string) string {
	return filepath.Join(dir, CodeProjectConfig)
}

func homeDir(goos string, getenv func(string) string) (string, error) {
	env := "HOME"
	if goos == "windows" {
		env = "USERPROFILE"
	}
	if h := getenv(env); h != "" {
		return h, nil
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return h, nil
	}
	return "", errors.New("cannot find the home directory ($" + env + " is not set)")
}
