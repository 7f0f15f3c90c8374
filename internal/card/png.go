package card

import (
	"image"
	"image/color"
	"math"

	"git.sr.ht/~sbinet/gg"
	xfont "golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"
)

// pngCanvas is vgimg's canvas with faster text. vgimg makes a new font
// face for every string and gg resamples every glyph through the current
// transform (bilinear), even when that is a plain move: about a quarter of
// the CPU of a table card (bench/card.md). For text that is not turned, pngCanvas keeps one face per
// font and size for the render and draws the glyphs straight onto the
// image at their subpixel position (as font.Drawer does). Turned text
// (45-degree labels, the y axis title) still goes through vgimg.
//
// It is used by one goroutine (one render): faces are not safe for
// concurrent use.
type pngCanvas struct {
	*vgimg.Canvas
	ctx    *gg.Context
	img    *image.RGBA
	dpi    float64
	color  []color.Color // mirrors vgimg's stack: SetColor, Push, Pop
	faces  map[font.Font]xfont.Face
	height float64 // pixels
}

func newPNGCanvas(w, h vg.Length, dpi int) *pngCanvas {
	px := func(l vg.Length) int { return int(float64(l)/72*float64(dpi) + 0.5) }
	img := image.NewRGBA(image.Rect(0, 0, px(w), px(h)))
	// vgimg would copy a fresh image into its drawing context; handing it
	// the context over our own image saves that copy.
	ctx := gg.NewContextForRGBA(img)
	ctx.SetLineCapButt()
	ctx.InvertY()
	cv := vgimg.NewWith(vgimg.UseImageWithContext(img, ctx), vgimg.UseDPI(dpi)) // background: white
	return &pngCanvas{
		Canvas: cv, ctx: ctx, img: img, dpi: float64(dpi),
		color:  []color.Color{color.Black},
		faces:  map[font.Font]xfont.Face{},
		height: float64(img.Bounds().Dy()),
	}
}

func (c *pngCanvas) SetColor(clr color.Color) {
	if clr == nil {
		clr = color.Black
	}
	c.Canvas.SetColor(clr)
	c.color[len(c.color)-1] = clr
}

func (c *pngCanvas) Push() {
	c.color = append(c.color, c.color[len(c.color)-1])
	c.Canvas.Push()
}

func (c *pngCanvas) Pop() {
	c.color = c.color[:len(c.color)-1]
	c.Canvas.Pop()
}

// FillString draws str with its baseline origin at pt, as vgimg does.
func (c *pngCanvas) FillString(f font.Face, pt vg.Point, str string) {
	if f.Font.Size == 0 {
		return
	}
	// Where vgimg would draw: (x, h-y) through the current transform
	// with the y axis flipped once more.
	x, y := pt.X.Dots(c.dpi), c.height-pt.Y.Dots(c.dpi)
	c.ctx.Push()
	c.ctx.InvertY()
	ox, oy := c.ctx.TransformPoint(x, y)
	ax, ay := c.ctx.TransformPoint(x+1, y)
	bx, by := c.ctx.TransformPoint(x, y+1)
	c.ctx.Pop()
	plain := math.Abs(ax-ox-1) < 1e-9 && math.Abs(ay-oy) < 1e-9 && math.Abs(bx-ox) < 1e-9 && math.Abs(by-oy-1) < 1e-9
	if !plain {
		c.Canvas.FillString(f, pt, str)
		return
	}
	face, ok := c.faces[f.Font]
	if !ok {
		face = f.FontFace(c.dpi)
		c.faces[f.Font] = face
	}
	d := xfont.Drawer{
		Dst:  c.img,
		Src:  image.NewUniform(c.color[len(c.color)-1]),
		Face: face,
		Dot:  fixed.Point26_6{X: fixed.Int26_6(math.Round(ox * 64)), Y: fixed.Int26_6(math.Round(oy * 64))},
	}
	d.DrawString(str)
}
