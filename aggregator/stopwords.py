"""Function words of the languages feeds come in: words that say nothing of what a text is
about. `aggregator topics` leaves them out of the words of items that fell to "More news"
(categorize.frequent_words), so that what is left are the keywords a topic is missing.

    function_words_for(words)   the function words to leave out of one text, given its
                                words (categorize.tokens): those of its language

Written here, not taken from justext (installed with trafilatura; ~60 ms to import, 8 ms to
read 18 lists): its lists are each language's most frequent Wikipedia words, content words
included ("war", "government", "football"; "Regierung", "Krieg"; "gobierno"; "حکومت"), the
very words an editor looks for in that list. Function words are a closed class: a few hundred
per language do not need upkeep.

One list per language, and each text is taken to be in one language: the union of all lists
would drop "war" and "die" (German), "son" and "car" (French), "van" (Dutch) from English
headlines. English itself is categorize.STOP_WORDS (the topic model uses it too); the short
list here only tells English text from the rest. Only `topics` imports this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache

from .text import fold_accents

_WORDS = {
    "en": """
        the of and to in is for on that with as at by from are was were be been this it an or
        has have had will would not but his her they their its who which after over about
        says said than into more new all also
    """,
    "de": """
        der die das den dem des ein eine einer eines einem einen und oder aber doch sondern
        denn weil dass daß ob wenn als wie auch noch schon nur sehr mehr nicht kein keine
        keinen keiner keinem ist sind war waren wird werden wurde wurden worden sein seine
        seiner seinen seinem seines hat haben hatte hatten habe kann können konnte soll
        sollen sollte muss müssen musste will wollen wollte darf dürfen ich du er sie es wir
        ihr ihre ihrer ihren ihrem ihres ihm ihn ihnen mich mir dich dir uns euch sich man mit
        von vom zu zum zur bei beim aus auf an am in im für über unter vor nach seit bis durch
        gegen ohne um zwischen während wegen trotz hinter neben laut dieser diese dieses
        diesen diesem jener jene welche welcher welches was wer wo wann warum hier dort da
        dann jetzt heute gestern immer wieder bereits etwa rund sowie also so nun mal ganz
        viel viele vielen alle allen aller alles andere anderen anderer dabei damit dazu
        darauf darüber davon dafür deshalb jedoch zudem sagte sagt sagen erklärte neue neuen
        neuer neues erste ersten erster zwei drei jahr jahre jahren gibt geht ab
    """,
    "fr": """
        le la les un une des du de au aux et ou mais donc car ni que qu qui quoi dont où ce
        cet cette ces son sa ses leur leurs mon ma mes ton ta tes notre nos votre vos il elle
        ils elles on nous vous je tu me te se lui eux en ne pas plus moins très aussi bien
        encore déjà toujours jamais est sont était étaient été être avoir ont avait avaient
        sera seront fait faire peut peuvent doit selon dans sur sous avec sans pour par entre
        vers chez depuis pendant avant après contre comme si quand tout tous toute toutes
        autre autres même mêmes ainsi alors lors cela ceci celle celui ceux celles aujourd
        hui hier an ans année années nouveau nouvelle nouveaux deux trois premier première
        dit déclaré affirmé va vont
    """,
    "es": """
        el la los las un una unos unas lo al del de y e o u pero sino que quien quienes cual
        cuales cuyo donde cuando como porque pues si no ni ya más menos muy también tampoco
        aún todavía siempre nunca es son era eran fue fueron ser sido estar está están
        estaba estaban ha han había habían hay haber tiene tienen tenía hace hacer puede
        pueden debe según en con sin por para sobre entre hacia desde hasta durante ante tras
        contra este esta esto estos estas ese esa eso esos esas aquel aquella su sus mi mis
        tu tus nuestro nuestra nuestros él ella ellos ellas nosotros usted ustedes le les se
        me te nos todo toda todos todas otro otra otros otras mismo misma cada año años nuevo
        nueva dos tres primer primera dijo afirmó dicen dice hoy ayer así va van
    """,
    "pt": """
        o a os as um uma uns umas ao aos à às do da dos das de em no na nos nas num numa pelo
        pela pelos pelas por para com sem sobre entre até desde após contra e ou mas porém que
        quem qual quais cujo onde quando como porque se não nem já mais menos muito muita
        muitos muitas também ainda sempre nunca é são era eram foi foram ser sido estar está
        estão estava estavam há tem têm tinha ter pode podem deve segundo este esta isto
        estes estas esse essa isso esses essas aquele aquela seu sua seus suas meu minha ele
        ela eles elas nós você vocês lhe lhes me te todo toda todos todas outro outra outros
        outras mesmo mesma cada ano anos novo nova dois duas três primeiro primeira disse
        dizem diz afirmou hoje ontem assim vai vão
    """,
    "it": """
        il lo la i gli le un uno una del dello della dei degli delle al allo alla ai agli alle
        dal dallo dalla dai dagli dalle nel nello nella nei negli nelle sul sullo sulla sui
        sugli sulle di da in con su per tra fra e ed o ma però che chi cui dove quando come
        perché se non né già più meno molto molta molti molte anche ancora sempre mai è sono
        era erano fu stato stata stati essere ha hanno aveva avevano avere può possono deve
        secondo questo questa questi queste quello quella quelli quelle suo sua suoi sue loro
        mio mia lui lei noi voi essi esse si ci vi ne tutto tutta tutti tutte altro altra
        altri altre stesso stessa ogni anno anni nuovo nuova due tre primo prima detto dice
        dicono oggi ieri così dopo contro senza verso
    """,
    "nl": """
        de het een en of maar want dus dat die dit deze wie wat waar wanneer hoe omdat als
        dan niet geen nog al ook wel zeer meer minder heel is zijn was waren wordt worden
        werd werden geweest heeft hebben had hadden kan kunnen kon moet moeten zal zullen zou
        zouden wil willen mag ik jij je hij zij ze wij we jullie hem haar hun hen mij me mijn
        jouw ons onze zich van in op aan met voor door bij uit over onder na naar tot sinds
        tegen zonder tussen tijdens volgens om te er hier daar nu toen vandaag gisteren nieuwe
        nieuw jaar jaren twee drie eerste alle alles andere ander veel zei zegt zeggen gaat
    """,
    "ur": """
        کے میں کی اور سے کا اس کو ہے نے پر ایک کہ یہ بھی ان کر ہیں جو کیا وہ جس بعد ہو
        تو نہیں یا جاتا لیے تک ہی اپنے کرنے تھا آپ نہ ساتھ گیا کسی ہوتا اپنی لیکن دیا تھے
        سب زیادہ کہا بہت جب ہونے ہوئے اسے ہوا طرح کوئی والے اسی دو جن انہوں یہاں ہوتی تھی
        گئی گئے رہا رہے رہی کیے کرتے کرنا والی پہلے اب ہم تم گا گی مطابق درمیان بارے لئے
        ذریعے خلاف بغیر
    """,
    "ar": """
        في من على إلى الى عن مع أن ان إن هذا هذه ذلك تلك التي الذي الذين ما لا لم لن قد
        كان كانت يكون تكون هو هي هم نحن أو او ثم بعد قبل عند حتى كل بين خلال حيث كما أي
        غير منذ وقد وفي ومن وهو وهي وكان كانوا أنه انه أنها انها فيه فيها عليه عليها لقد
        قال وقال ضد دون لدى عبر أكثر أيضا ايضا اليوم أمس يوم عام عدة إنه حول ضمن لكن إذا
    """,
    "ru": """
        и в во не что он она оно они я ты мы вы на с со как а то все всё так его ее её их но
        да к ко у же за бы по только мне было был была были быть будет будут вот от меня еще
        ещё нет о об из ему ей им теперь когда даже ли если уже или ни него нее неё до вас
        там потом себя себе ничего может тут где есть надо ней для тебя чем сам без тоже под
        тогда кто этот эта это эти этого этой этом этому эту тот та те того том тем потому
        какой какая какие один одна почти мой моя чтобы сейчас можно при два три после над
        больше через нас про всего них много перед между также который которая которое
        которые которых которым году года лет заявил заявила сообщил сообщила сообщает
        говорит сказал сказала глава время новый новые свой своей свои своих
    """,
    "tr": """
        ve ile bir bu şu o da de ki mi mı mu mü ne için gibi kadar daha çok en az sonra önce
        ama fakat ancak veya ya yada hem her hiç olan olarak oldu olduğu olduğunu olacak
        değil var yok ise diye göre bile kendi ben sen biz siz onlar onun onu bunu bunun şey
        çünkü eğer nasıl neden nerede hangi tüm bütün yeni iki üç yıl yılı yılında dedi etti
        eden ederek edildi yapılan yaptı içinde arasında üzerinde karşı sadece artık bugün
        dün ilk son ayrıca
    """,
    "fa": """
        و در به از که این آن را با است هست برای یک خود تا کرد کند کنند کرده کردن بر هم نیز
        شد شده شود شوند می نمی بود بودند ها های اما یا پس اگر چه همه هر دیگر باید وی او ما
        شما آنها ایشان اینکه آنکه چون بین پیش گفت گفته دارد دارند داشت داشته هیچ بیش روی
        ولی زیرا سال امروز دیروز اعلام طی مورد درباره پیرامون
    """,
}


def function_words_for(words: Iterable[str]) -> frozenset[str]:
    """The function words to leave out of one text, given its folded words: those of the
    language whose function words are most among them (of each, when several tie: Spanish
    and Portuguese share many); none when that is English (categorize.STOP_WORDS has them)
    or when the text has none. English wins a tie: what another list would take from an
    English text ("war", "son") matters more than a missed "in"."""
    votes: Counter[str] = Counter()
    by_word = _languages_by_word()
    for word in words:
        votes.update(by_word.get(word, ()))
    best = max(votes.values(), default=0)
    if not best or votes["en"] == best:
        return frozenset()
    lists = _lists()
    return frozenset().union(*(lists[lang] for lang, n in votes.items() if n == best))


@cache
def _lists() -> dict[str, frozenset[str]]:
    return {lang: frozenset(fold_accents(w) for w in text.split()) for lang, text in _WORDS.items()}


@cache
def _languages_by_word() -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for lang, words in _lists().items():
        for word in words:
            found.setdefault(word, []).append(lang)
    return {word: tuple(langs) for word, langs in found.items()}
