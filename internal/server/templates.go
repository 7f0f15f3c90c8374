package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/activitybi/activitybi/internal/sqltmpl"
)

// TemplateInfos describes a template library for list_templates.
func TemplateInfos(lib *sqltmpl.Library) []TemplateInfo {
	list := lib.List()
	out := make([]TemplateInfo, 0, len(list))
	for _, t := range list {
		ti := TemplateInfo{Name: t.Name, Description: t.Description, Card: t.Card.Kind, TimeoutSec: t.Timeout.Seconds(),
			Params: make([]TemplateParam, 0, len(t.Params))}
		for _, p := range t.Params {
			ti.Params = append(ti.Params, TemplateParam{Name: p.Name, Type: p.Type, Description: p.Description,
				Default: p.Default, Required: p.Default == nil && !p.Optional, Min: p.Min, Max: p.Max,
				MaxLen: p.MaxLen, Values: p.Values})
		}
		for _, c := range t.Columns {
			ti.Columns = append(ti.Columns, TemplateColumn{Name: c.Name, Type: c.Type, Description: c.Description})
		}
		out = append(out, ti)
	}
	return out
}

// TemplateInfo describes one SafeSQL template for list_templates.
type TemplateInfo struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Params      []TemplateParam  `json:"params"`
	Columns     []TemplateColumn `json:"columns,omitempty"`
	Card        string           `json:"default_card,omitempty"` // kind of the template's default card
	TimeoutSec  float64          `json:"timeout_seconds,omitempty"`
}

// TemplateParam is one typed parameter.
type TemplateParam struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Description string   `json:"description,omitempty"`
	Default     any      `json:"default,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	MaxLen      int      `json:"max_length,omitempty"`
	Values      []string `json:"values,omitempty"`
}

// TemplateColumn is one column of a template's result.
type TemplateColumn struct {
	Name        string `json:"name"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
}

func listTemplatesTool() *mcp.Tool {
	return &mcp.Tool{
		Name:        "list_templates",
		Title:       "List the questions activitybi can answer",
		Description: `The query templates submit_query accepts: for each, what it answers, its typed parameters (with defaults, ranges and allowed values) and the columns of its result. Optional name returns one template only.`,
		Annotations: &mcp.ToolAnnotations{Title: "List query templates", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
		InputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {"name": {"type": "string", "maxLength": 64, "description": "one template's name"}},
  "additionalProperties": false
}`),
		OutputSchema: json.RawMessage(`{
  "type": "object",
  "properties": {"templates": {"type": "array", "items": {"type": "object"}}},
  "required": ["templates"]
}`),
	}
}

// ListTemplatesResult is list_templates' structured content.
type ListTemplatesResult struct {
	Templates []TemplateInfo `json:"templates"`
}

func (t *tools) listTemplates(_ context.Context, req *mcp.CallToolRequest, _ string) (any, error) {
	m, ie := args(req.Params.Arguments, "list_templates", []string{"name"})
	if m == nil {
		return nil, ie
	}
	var name string
	ie.str(m, "name", &name)
	if err := ie.err(); err != nil {
		return nil, err
	}
	all := t.opts.Templates
	if name != "" {
		for _, ti := range all {
			if ti.Name == name {
				return ListTemplatesResult{Templates: []TemplateInfo{ti}}, nil
			}
		}
		names := make([]string, len(all))
		for i, ti := range all {
			names[i] = ti.Name
		}
		return nil, &inputError{problems: []string{fmt.Sprintf("name: no template %q; there are %s", name, strings.Join(names, ", "))}}
	}
	return ListTemplatesResult{Templates: all}, nil
}
